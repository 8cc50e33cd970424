from __future__ import annotations

import pytest
import torch

from safr_lightning.metrics.superposition import capacity, centred, interference, polysemanticity
from tests.reference import capacity as ref_capacity
from tests.reference import centred as ref_centred
from tests.reference import interference as ref_interference
from tests.reference import polysemanticity as ref_polysemanticity
from tests.reference import random_mask

LENGTHS = [5, 1, 3, 7, 2]  # padding everywhere but the longest, and a one-token text


@pytest.fixture
def h() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(len(LENGTHS), max(LENGTHS), 16, generator=g)


@pytest.fixture
def mask() -> torch.Tensor:
    return random_mask(LENGTHS)


def test_interference_matches_token_loop(h: torch.Tensor, mask: torch.Tensor) -> None:
    torch.testing.assert_close(interference(h, mask).double(), ref_interference(h, mask), rtol=1e-5, atol=1e-4)


def test_polysemanticity_matches_token_loop(h: torch.Tensor, mask: torch.Tensor) -> None:
    torch.testing.assert_close(polysemanticity(h, mask).double(), ref_polysemanticity(h, mask), rtol=1e-5, atol=1e-4)


def test_capacity_matches_token_loop(h: torch.Tensor, mask: torch.Tensor) -> None:
    torch.testing.assert_close(capacity(h, mask).double(), ref_capacity(h, mask), rtol=1e-5, atol=1e-6)


def test_capacity_ignores_padding(h: torch.Tensor, mask: torch.Tensor) -> None:
    garbage = h.clone()
    garbage[~mask] = 1e3 * torch.randn_like(garbage[~mask])
    torch.testing.assert_close(capacity(garbage, mask), capacity(h, mask))
    torch.testing.assert_close(polysemanticity(garbage, mask), polysemanticity(h, mask))
    assert (capacity(garbage, mask)[~mask] == 0).all()
    assert (polysemanticity(garbage, mask)[~mask] == 0).all()


def test_capacity_bounds_and_one_token_text(h: torch.Tensor, mask: torch.Tensor) -> None:
    c = capacity(h, mask)
    assert (c >= 0).all() and (c <= 1 + 1e-6).all()
    assert (c.sum(1) >= 1 - 1e-5).all()
    assert c[1, 0] == pytest.approx(1.0)  # the one-token text


def test_capacity_of_orthogonal_tokens_is_one() -> None:
    h = torch.eye(4).unsqueeze(0) * torch.tensor([1.0, 2.0, 3.0, 4.0])[None, :, None]
    mask = torch.ones(1, 4, dtype=torch.bool)
    torch.testing.assert_close(capacity(h, mask), torch.ones(1, 4))
    torch.testing.assert_close(polysemanticity(h, mask), torch.zeros(1, 4))


def test_zero_vector_has_zero_capacity_and_finite_gradients() -> None:
    h = torch.randn(1, 3, 8)
    h[0, 1] = 0  # a token VMASK dropped
    h.requires_grad_(True)
    mask = torch.ones(1, 3, dtype=torch.bool)
    c, p = capacity(h, mask), polysemanticity(h, mask)
    assert c[0, 1] == 0
    (c.sum() + p.sum()).backward()
    assert torch.isfinite(h.grad).all()


def test_metrics_accept_bf16_and_compute_in_fp32(h: torch.Tensor, mask: torch.Tensor) -> None:
    out = capacity(h.bfloat16(), mask)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, capacity(h.bfloat16().float(), mask))


def test_centred_matches_token_loop(mask: torch.Tensor) -> None:
    h = torch.randn(len(LENGTHS), max(LENGTHS), 8, generator=torch.Generator().manual_seed(2))
    got = centred(h, mask)
    torch.testing.assert_close(got.double(), ref_centred(h, mask), rtol=1e-5, atol=1e-5)
    assert (got[~mask] == 0).all()
