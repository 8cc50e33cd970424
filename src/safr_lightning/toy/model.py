"""The ReLU-output toy model of superposition (Elhage et al. 2022) and SAFR's penalty on it.

``x ∈ R^n`` sparse (each feature 0 with probability S, else uniform on [0, 1]), ``h = W x`` with
``W`` [m, n], ``x' = ReLU(Wᵀ h + b)``. Feature i's direction in the hidden space is the column
``W_i = W[:, i]``, the toy's counterpart of a token's representation ``h_i`` in SAFR.

Everything is batched over K independent models (a sweep of sparsities, decays, penalties, seeds)
with a leading ``[K]`` dimension: ``W`` [K, m, n], ``b`` [K, n], inputs [K, N, n]. Summing the K
losses and stepping one Adam trains the K models exactly as K separate runs would (Adam is
elementwise), in one ``torch.bmm`` per layer instead of K small ones.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from safr_lightning.metrics.superposition import polysemanticity

UNIFORM_SECOND_MOMENT = 1.0 / 3.0  # E[u²] for u ~ U[0, 1]: the value of a present feature


def importance(n_features: int, decay: float | torch.Tensor) -> torch.Tensor:
    """``I_i = decay^i``, i = 0..n-1: [n] for a float decay, [K, n] for a [K] tensor of decays."""
    index = torch.arange(n_features, dtype=torch.float32)
    if isinstance(decay, torch.Tensor):
        return decay.float().unsqueeze(-1) ** index
    return torch.full((n_features,), float(decay)) ** index


def sparse_features(values: torch.Tensor, draws: torch.Tensor, sparsity: torch.Tensor) -> torch.Tensor:
    """``x = values · [draws ≥ S]``: each feature 0 with probability S, else its uniform value.

    ``values`` and ``draws`` are U[0, 1) samples [K, N, n]; ``sparsity`` is [K]. Models that share
    ``values``/``draws`` but differ in S see nested supports (common random numbers): the features
    present at S = 0.99 are a subset of those present at S = 0.9.
    """
    return torch.where(draws >= sparsity.to(draws.dtype).view(-1, 1, 1), values, 0.0)


def sample_features(
    n_models: int, n_samples: int, n_features: int, sparsity: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """A fresh batch [K, N, n] from ``generator`` (one independent draw per model)."""
    values = torch.rand(n_models, n_samples, n_features, generator=generator)
    draws = torch.rand(n_models, n_samples, n_features, generator=generator)
    return sparse_features(values, draws, sparsity)


def init_weights(n_models: int, n_hidden: int, n_features: int, generator: torch.Generator) -> torch.Tensor:
    """Xavier-normal ``W`` [K, m, n] (std ``sqrt(2 / (m + n))``), as in Elhage et al.'s code."""
    std = math.sqrt(2.0 / (n_hidden + n_features))
    return torch.randn(n_models, n_hidden, n_features, generator=generator) * std


def encode(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``h = W x`` for every sample: ``x`` [K, N, n], ``W`` [K, m, n] -> ``h`` [K, N, m]."""
    return torch.bmm(x, weight.transpose(1, 2))


def decode(weight: torch.Tensor, bias: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``x' = ReLU(Wᵀ h + b)``: ``h`` [K, N, m], ``W`` [K, m, n], ``b`` [K, n] -> [K, N, n]."""
    return torch.relu(torch.baddbmm(bias.unsqueeze(1), h, weight))


def reconstruction_loss(x: torch.Tensor, x_hat: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Elhage et al.'s ``Σ_i I_i (x_i − x'_i)²`` averaged over the samples: [K, N, n] x2, [K, n] -> [K]."""
    return ((x - x_hat).square() * weights.unsqueeze(1)).sum(-1).mean(-1)


@torch.no_grad()
def reconstruction_gradients(
    weight: torch.Tensor,
    bias: torch.Tensor,
    x: torch.Tensor,
    weights: torch.Tensor,
    scale: torch.Tensor,
    with_loss: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """``Σ_k scale_k · reconstruction_loss_k`` and its gradients, written out by hand.

    ``W`` [K, m, n], ``b`` [K, n], ``x`` [K, N, n], ``I`` [K, n], ``scale`` [K] -> the scaled losses [K]
    (None unless ``with_loss``: a training step needs only the gradients), ``∂/∂W`` [K, m, n] and
    ``∂/∂b`` [K, n]. The same numbers as autograd through :func:`encode`,
    :func:`decode` and :func:`reconstruction_loss` (``tests/toy`` checks it) in about half the
    memory passes: with ``z = Wᵀ h + b`` and ``g = ∂L/∂z = 2 · scale · I · (ReLU(z) − x) · [z > 0] / N``,
    ``∂L/∂b = Σ_samples g``, ``∂L/∂W = hᵀ g + (g Wᵀ)ᵀ x`` (decoder and encoder use of the tied W).
    """
    h = encode(weight, x)
    z = torch.baddbmm(bias.unsqueeze(1), h, weight)
    inactive = z <= 0
    err = z.clamp_min_(0).sub_(x)  # x' − x, in place of z
    losses = (err.square() * weights.unsqueeze(1)).sum(-1).mean(-1) * scale if with_loss else None
    coef = (2.0 / x.shape[1]) * scale.unsqueeze(-1) * weights  # [K, n]
    g = err.mul_(coef.unsqueeze(1)).masked_fill_(inactive, 0.0)
    grad_bias = g.sum(1)
    grad_weight = torch.bmm(h.transpose(1, 2), g)
    grad_weight.add_(torch.bmm(torch.bmm(g, weight.transpose(1, 2)).transpose(1, 2), x))
    return losses, grad_weight, grad_bias


def zero_model_loss(sparsity: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The expected reconstruction loss of ``x' = 0``: ``(1 − S) · E[u²] · Σ_i I_i``; [K], [K, n] -> [K].

    Dividing by it puts the reconstruction loss on one scale at every sparsity (1 = nothing
    reconstructed), so one λ means the same trade-off against the penalty at S = 0 and S = 0.99,
    where the raw loss is 100 times smaller.
    """
    return (1 - sparsity.float()) * UNIFORM_SECOND_MOMENT * weights.sum(-1)


def feature_directions(weight: torch.Tensor) -> torch.Tensor:
    """The features' hidden directions ``W_i`` as SAFR's token representations ``h``: [K, m, n] -> [K, n, m]."""
    return weight.transpose(1, 2)


def all_features(weight: torch.Tensor) -> torch.Tensor:
    """The metrics' "real token" mask for the features: all True, [K, n]."""
    return torch.ones(weight.shape[0], weight.shape[2], dtype=torch.bool, device=weight.device)


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt with gradient 0 (not inf · 0 = NaN) at 0 (as :func:`safr_lightning.losses._safe_sqrt`)."""
    positive = x > 0
    return torch.where(positive, torch.where(positive, x, 1.0).sqrt(), 0.0)


def importance_penalty(weight: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """SAFR's L_imp on the toy: ``Σ_i I_i · sqrt(P_i / m) / Σ_i I_i``; ``W`` [K, m, n], ``I`` [K, n] -> [K].

    ``P_i = Σ_{j≠i} (Ŵ_i · W_j)²`` is the project's own
    :func:`~safr_lightning.metrics.superposition.polysemanticity` of the feature directions, and
    ``sqrt(P_i / m)`` is the paper's per-token term ``sqrt(P_i^V / E)`` with E = m, the hidden width
    (:func:`safr_lightning.losses.importance_loss`). The paper averages it uniformly over tokens and
    lets importance in through VMASK, which shrinks unimportant tokens' vectors (so they add little
    to the others' P); here importance is known exactly, so the average is weighted by ``I_i``
    instead: the important features' polysemanticity is what is penalized. It is 0 iff every
    feature with ``I_i > 0`` is orthogonal to all the others (or zero), and it is invariant to the
    scale of ``W_i`` itself (not of the other features).
    """
    poly = polysemanticity(feature_directions(weight), all_features(weight))
    terms = _safe_sqrt(poly / weight.shape[1])
    return (terms * weights).sum(-1) / weights.sum(-1)


class ToyModel(nn.Module):
    """K independent ReLU-output toy models: ``W`` [K, m, n] (Xavier-normal), ``b`` [K, n] (zeros)."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        n_models, _, n_features = weight.shape
        self.weight = nn.Parameter(weight.detach().clone().float())
        self.bias = nn.Parameter(torch.zeros(n_models, n_features))

    @classmethod
    def initialised(cls, n_models: int, n_hidden: int, n_features: int, generator: torch.Generator) -> ToyModel:
        return cls(init_weights(n_models, n_hidden, n_features, generator))

    @property
    def n_models(self) -> int:
        return self.weight.shape[0]

    @property
    def n_hidden(self) -> int:
        return self.weight.shape[1]

    @property
    def n_features(self) -> int:
        return self.weight.shape[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [K, N, n] -> ``x'`` [K, N, n]."""
        return decode(self.weight, self.bias, encode(self.weight, x))
