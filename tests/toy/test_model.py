"""The toy model's pieces against slow, obviously-correct references."""

from __future__ import annotations

import math

import pytest
import torch

from safr_lightning.toy.features import feature_stats
from safr_lightning.toy.model import (
    ToyModel,
    importance,
    importance_penalty,
    init_weights,
    reconstruction_gradients,
    reconstruction_loss,
    sample_features,
    zero_model_loss,
)


def elhage_dimensionality(w: torch.Tensor) -> list[float]:
    """Elhage et al.'s D_i = ‖W_i‖² / Σ_j (Ŵ_i · W_j)², a plain loop over the columns of W [m, n]."""
    cols = [w[:, i].double() for i in range(w.shape[1])]
    out = []
    for wi in cols:
        unit = wi / wi.norm()
        out.append(float(wi.norm() ** 2) / sum(float(torch.dot(unit, wj)) ** 2 for wj in cols))
    return out


def test_capacity_of_feature_directions_is_elhage_dimensionality() -> None:
    w = torch.randn(3, 5, 20, generator=torch.Generator().manual_seed(0))
    capacity = feature_stats(w, importance(20, torch.full((3,), 0.9))).capacity
    for k in range(3):
        expected = torch.tensor(elhage_dimensionality(w[k]), dtype=torch.float64)
        torch.testing.assert_close(capacity[k].double(), expected, rtol=1e-5, atol=1e-6)


def test_penalty_is_zero_for_orthogonal_feature_directions() -> None:
    # 4 features in 6 dimensions: scaled, rotated orthogonal columns, and one feature left at zero.
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(1)))
    w = (q[:, :4] * torch.tensor([2.0, 0.5, 1.0, 3.0])).unsqueeze(0)
    w[0, :, 2] = 0
    assert importance_penalty(w, importance(4, torch.tensor([0.8]))).item() == pytest.approx(0.0, abs=1e-6)


def test_penalty_is_positive_when_an_important_feature_shares_its_direction() -> None:
    w = torch.zeros(1, 2, 3)
    w[0, 0, 0] = 1.0
    w[0, 0, 1] = 0.6  # feature 1 leaks into feature 0's direction (and vice versa)
    w[0, 1, 2] = 1.0
    weights = importance(3, torch.tensor([0.5]))  # 1, 0.5, 0.25
    # P_0 = 0.36, P_1 = 1, P_2 = 0; L = (1·sqrt(0.36/2) + 0.5·sqrt(1/2)) / 1.75
    expected = (math.sqrt(0.18) + 0.5 * math.sqrt(0.5)) / 1.75
    assert importance_penalty(w, weights).item() == pytest.approx(expected, rel=1e-5)


def test_penalty_weights_polysemanticity_by_importance() -> None:
    # The same superposed pair, once among the important features and once among the unimportant.
    w = torch.zeros(2, 3, 4)
    w[0, 0, 0] = w[0, 0, 1] = 1.0  # features 0 and 1 share a dimension
    w[0, 1, 2] = w[0, 2, 3] = 1.0
    w[1, 0, 2] = w[1, 0, 3] = 1.0  # features 2 and 3 share a dimension
    w[1, 1, 0] = w[1, 2, 1] = 1.0
    penalty = importance_penalty(w, importance(4, torch.tensor([0.5, 0.5])))
    assert penalty[0] > 2 * penalty[1] > 0


def test_hand_written_gradients_equal_autograd() -> None:
    g = torch.Generator().manual_seed(2)
    k, m, n = 4, 5, 20
    w = init_weights(k, m, n, g).requires_grad_()
    b = (0.1 * torch.randn(k, n, generator=g)).requires_grad_()
    x = sample_features(k, 256, n, torch.tensor([0.0, 0.5, 0.9, 0.99]), g)
    weights = importance(n, torch.tensor([1.0, 0.9, 0.8, 0.7]))
    scale = torch.rand(k, generator=g) + 0.5
    losses, grad_w, grad_b = reconstruction_gradients(w.detach(), b.detach(), x, weights, scale)
    model = ToyModel(w.detach())
    with torch.no_grad():
        model.bias.copy_(b)
    expected = reconstruction_loss(x, model(x), weights) * scale
    expected.sum().backward()
    torch.testing.assert_close(losses, expected.detach())
    torch.testing.assert_close(grad_w, model.weight.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad_b, model.bias.grad, rtol=1e-5, atol=1e-6)


def test_features_are_zero_with_probability_s_and_uniform_otherwise() -> None:
    sparsity = torch.tensor([0.0, 0.7, 0.99])
    x = sample_features(3, 20_000, 20, sparsity, torch.Generator().manual_seed(3))
    zero_fraction = (x == 0).float().mean((1, 2))
    torch.testing.assert_close(zero_fraction, sparsity, atol=3e-3, rtol=0)
    present = x[1][x[1] > 0]
    assert present.max() < 1 and present.mean().item() == pytest.approx(0.5, abs=0.01)


def test_zero_model_loss_is_the_expected_loss_of_predicting_zero() -> None:
    sparsity, weights = torch.tensor([0.0, 0.9]), importance(20, torch.tensor([0.7, 1.0]))
    x = sample_features(2, 200_000, 20, sparsity, torch.Generator().manual_seed(4))
    measured = reconstruction_loss(x, torch.zeros_like(x), weights)
    torch.testing.assert_close(measured, zero_model_loss(sparsity, weights), rtol=0.02, atol=0)


def test_importance_decays_geometrically() -> None:
    assert importance(4, 0.5).tolist() == [1.0, 0.5, 0.25, 0.125]
    expected = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.1, 0.01]])
    torch.testing.assert_close(importance(3, torch.tensor([1.0, 0.1])), expected)
