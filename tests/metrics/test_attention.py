from __future__ import annotations

import pytest
import torch

from safr_lightning.metrics.attention import attention_received, correlated_pairs, pair_mask
from tests.reference import attention_received as ref_attention_received
from tests.reference import correlated_pairs as ref_correlated_pairs
from tests.reference import random_attention, random_mask

LENGTHS = [5, 1, 3, 7, 2, 10]  # padding everywhere but the longest, and a one-token text


@pytest.fixture
def mask() -> torch.Tensor:
    return random_mask(LENGTHS)


@pytest.fixture
def attention(mask: torch.Tensor) -> torch.Tensor:
    return random_attention(mask, heads=3, generator=torch.Generator().manual_seed(1))


def test_attention_received_matches_token_loop(attention: torch.Tensor, mask: torch.Tensor) -> None:
    got = attention_received(attention, mask)
    torch.testing.assert_close(got.double(), ref_attention_received(attention, mask), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.sum(-1), torch.ones(len(LENGTHS)), rtol=0, atol=1e-5)


@pytest.mark.parametrize("k", [30, 100])
def test_correlated_pairs_match_pair_loop(attention: torch.Tensor, mask: torch.Tensor, k: float) -> None:
    got = correlated_pairs(attention, mask, k)
    assert torch.equal(got, ref_correlated_pairs(attention, mask, k))
    assert not got[1].any()  # a one-token text has no pair


def test_pair_mask_is_real_off_diagonal_pairs(mask: torch.Tensor) -> None:
    pairs = pair_mask(mask)
    assert pairs.sum((-1, -2)).tolist() == [n * (n - 1) for n in LENGTHS]
    assert not pairs.diagonal(dim1=-2, dim2=-1).any()
