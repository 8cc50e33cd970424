from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from safr_lightning.losses import LossWeights, importance_loss, interaction_loss, safr_loss, vmask_information
from tests.reference import importance_loss as ref_importance
from tests.reference import interaction_loss as ref_interaction
from tests.reference import random_attention, random_mask

LENGTHS = [6, 1, 4, 2]


@pytest.fixture
def g() -> torch.Generator:
    return torch.Generator().manual_seed(1)


def test_importance_loss_matches_token_loop(g: torch.Generator) -> None:
    mask = random_mask(LENGTHS)
    h = torch.randn(len(LENGTHS), max(LENGTHS), 12, generator=g)
    assert float(importance_loss(h, mask)) == pytest.approx(ref_importance(h, mask), rel=1e-5)


@pytest.mark.parametrize("include_self", [False, True])
def test_interaction_loss_matches_token_loop(g: torch.Generator, include_self: bool) -> None:
    mask = random_mask(LENGTHS)
    a = random_attention(mask, heads=3, generator=g)
    got = float(interaction_loss(a, mask, include_self=include_self))
    assert got == pytest.approx(ref_interaction(a, mask, include_self), rel=1e-5)


def _pad(x: torch.Tensor, extra: int, dims: tuple[int, ...]) -> torch.Tensor:
    for d in dims:
        shape = list(x.shape)
        shape[d] = extra
        x = torch.cat([x, torch.randn(shape)], dim=d)  # garbage, not zeros: padding must be masked
    return x


def test_losses_unchanged_when_padding_is_appended(g: torch.Generator) -> None:
    mask = random_mask(LENGTHS)
    h = torch.randn(len(LENGTHS), max(LENGTHS), 12, generator=g)
    a = random_attention(mask, heads=2, generator=g)
    wide_mask = torch.cat([mask, torch.zeros(len(LENGTHS), 5, dtype=torch.bool)], 1)
    wide_h = _pad(h, 5, (1,))
    wide_a = random_attention(wide_mask, heads=2, generator=g)
    wide_a[:, :, : mask.shape[1], : mask.shape[1]] = a  # same weights on real keys, 0 on new padded keys
    wide_a[:, :, mask.shape[1] :, :] = torch.rand(len(LENGTHS), 2, 5, wide_mask.shape[1])  # padded queries
    torch.testing.assert_close(importance_loss(wide_h, wide_mask), importance_loss(h, mask))
    torch.testing.assert_close(interaction_loss(wide_a, wide_mask), interaction_loss(a, mask))


def test_losses_of_one_token_texts_are_zero_with_finite_gradients() -> None:
    mask = torch.ones(3, 1, dtype=torch.bool)
    h = torch.randn(3, 1, 8, requires_grad=True)
    scores = torch.randn(3, 2, 1, 1, requires_grad=True)
    a = scores.softmax(-1)
    imp, inter = importance_loss(h, mask), interaction_loss(a, mask)
    assert imp.item() == 0 and inter.item() == 0
    (imp + inter).backward()
    assert torch.isfinite(h.grad).all() and torch.isfinite(scores.grad).all()


def test_importance_loss_gradient_is_finite_when_vmask_drops_tokens() -> None:
    h = torch.randn(2, 4, 8)
    h[0, 1:] = 0  # every token but one dropped: P = 0 and zero vectors
    h.requires_grad_(True)
    importance_loss(h, torch.ones(2, 4, dtype=torch.bool)).backward()
    assert torch.isfinite(h.grad).all()


def test_vmask_information_is_negative_entropy_over_real_tokens() -> None:
    q = torch.tensor([[0.5, 0.9, 0.3]])
    mask = torch.tensor([[True, True, False]])
    expected = sum(p * torch.log(torch.tensor(p)) + (1 - p) * torch.log(torch.tensor(1 - p)) for p in (0.5, 0.9)) / 2
    assert float(vmask_information(q, mask)) == pytest.approx(float(expected), rel=1e-5)


def test_safr_loss_combines_terms_with_lambdas(g: torch.Generator) -> None:
    mask = random_mask(LENGTHS)
    trace = {
        "attention_mask": mask,
        "vmask": torch.randn(len(LENGTHS), max(LENGTHS), 12, generator=g),
        "attention": random_attention(mask, heads=2, generator=g),
        "vmask_prob": torch.rand(len(LENGTHS), max(LENGTHS), generator=g),
    }
    logits, labels = torch.randn(len(LENGTHS), 2, generator=g), torch.tensor([0, 1, 1, 0])
    terms = safr_loss(logits, labels, trace, LossWeights(imp=0.3, inter=2.0, beta=0.5))
    expected = (
        F.cross_entropy(logits, labels)
        + 0.3 * importance_loss(trace["vmask"], mask)
        + 2.0 * interaction_loss(trace["attention"], mask)
        + 0.5 * vmask_information(trace["vmask_prob"], mask)
    )
    torch.testing.assert_close(terms["loss"], expected)
    assert set(terms) == {"loss_ce", "loss_imp", "loss_inter", "loss_info", "loss"}
    no_reg = safr_loss(logits, labels, trace, LossWeights())
    torch.testing.assert_close(no_reg["loss"], no_reg["loss_ce"])


def test_losses_and_metrics_stay_fp32_under_bf16_autocast() -> None:
    """The trainer=gpu path (bf16-mixed): autocast must not push the T³ matmuls into bf16."""
    from safr_lightning.metrics.superposition import capacity

    g = torch.Generator().manual_seed(5)
    mask = random_mask(LENGTHS)
    h = torch.randn(len(LENGTHS), max(LENGTHS), 12, generator=g)
    a = random_attention(mask, heads=2, generator=g).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inter, imp, cap = interaction_loss(a, mask), importance_loss(h, mask), capacity(h, mask)
    inter.backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()
    torch.testing.assert_close(inter.detach(), interaction_loss(a.detach(), mask))
    torch.testing.assert_close(imp, importance_loss(h, mask))
    torch.testing.assert_close(cap, capacity(h, mask))
