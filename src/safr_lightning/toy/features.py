"""Per-feature measurements of trained toy models, with the project's own metric functions.

The "tokens" are the n feature directions ``W_i`` (``h = Wᵀ`` [K, n, m], every feature real), so
:func:`~safr_lightning.metrics.superposition.capacity` is Elhage et al.'s feature dimensionality
``D_i = ‖W_i‖² / Σ_j (Ŵ_i · W_j)²`` (the same number: multiply both by ``‖W_i‖²``) and
:func:`~safr_lightning.metrics.superposition.polysemanticity` is their "superposition" of feature i,
``Σ_{j≠i} (Ŵ_i · W_j)²``: how much of the other features leaks into feature i's direction.

The ground truth ("dedicated dimension") is read off the weights, not from these metrics' ratios:

- feature i is **represented** when ``‖W_i‖ > REPRESENTED_NORM`` (0.5): a present feature of value
  u comes back at ``‖W_i‖² u`` before the ReLU, and a trained model puts the norm of what it keeps
  near 1 and of what it drops near 0 (Elhage et al.'s figures; 0.5 splits the two);
- it has a **dedicated dimension** when it is represented and its interference
  ``Σ_{j≠i} (Ŵ_i · W_j)² < DEDICATED_INTERFERENCE`` (0.1): less than a tenth of a unit-norm feature
  leaks into its direction. An antipodal pair (the first superposition geometry) has interference
  ≈ 1, a pentagon ≈ 0.5 per feature, so 0.1 lies well below every superposed arrangement.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from safr_lightning.metrics.superposition import capacity, polysemanticity
from safr_lightning.toy.model import all_features, feature_directions

REPRESENTED_NORM = 0.5
DEDICATED_INTERFERENCE = 0.1


@dataclass(frozen=True)
class FeatureStats:
    """Per-feature numbers [K, n] and per-model summaries [K] of K toy models."""

    capacity: torch.Tensor  # C_i, the project's capacity of W_i among the features, [K, n]
    norm: torch.Tensor  # ‖W_i‖, [K, n]
    polysemanticity: torch.Tensor  # P_i = Σ_{j≠i} (Ŵ_i · W_j)², [K, n]
    represented: torch.Tensor  # bool, ‖W_i‖ > 0.5, [K, n]
    dedicated: torch.Tensor  # bool, represented and P_i < 0.1, [K, n]
    weighted_capacity: torch.Tensor  # Σ_i I_i C_i / Σ_i I_i, [K]
    top_capacity: torch.Tensor  # mean C_i of the m most important features, [K]
    rest_capacity: torch.Tensor  # mean C_i of the other n − m, [K]
    dimensions_per_feature: torch.Tensor  # Elhage et al.'s m / ‖W‖_F², [K]

    @property
    def n_represented(self) -> torch.Tensor:
        return self.represented.sum(-1)

    @property
    def n_dedicated(self) -> torch.Tensor:
        return self.dedicated.sum(-1)

    @property
    def total_capacity(self) -> torch.Tensor:
        """``Σ_i C_i`` [K]: how many dimensions' worth of features the model holds (at most m)."""
        return self.capacity.sum(-1)


def top_features(weights: torch.Tensor, n_top: int) -> torch.Tensor:
    """Bool [K, n]: the ``n_top`` most important features of each model (ties: the lower index)."""
    order = torch.sort(weights, dim=-1, descending=True, stable=True).indices[..., :n_top]
    return torch.zeros_like(weights, dtype=torch.bool).scatter(-1, order, True)


@torch.no_grad()
def feature_stats(weight: torch.Tensor, weights: torch.Tensor) -> FeatureStats:
    """Measure K toy models: ``W`` [K, m, n], importances ``I`` [K, n]."""
    weight = weight.detach().float()
    h, mask = feature_directions(weight), all_features(weight)
    cap = capacity(h, mask)
    poly = polysemanticity(h, mask)
    norm = torch.linalg.vector_norm(h, dim=-1)
    represented = norm > REPRESENTED_NORM
    top = top_features(weights, weight.shape[1])
    rest = ~top
    return FeatureStats(
        capacity=cap,
        norm=norm,
        polysemanticity=poly,
        represented=represented,
        dedicated=represented & (poly < DEDICATED_INTERFERENCE),
        weighted_capacity=(weights * cap).sum(-1) / weights.sum(-1),
        top_capacity=(cap * top).sum(-1) / top.sum(-1).clamp_min(1),
        rest_capacity=(cap * rest).sum(-1) / rest.sum(-1).clamp_min(1),
        dimensions_per_feature=weight.shape[1] / weight.square().sum((-2, -1)).clamp_min(1e-12),
    )
