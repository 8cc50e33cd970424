from __future__ import annotations

import pytest
import torch

from safr_lightning.metrics.allocation import (
    attention_received,
    centred,
    correlated_pairs,
    pair_mask,
    top_count,
    top_fraction_mask,
)
from tests.reference import attention_received as ref_attention_received
from tests.reference import centred as ref_centred
from tests.reference import correlated_pairs as ref_correlated_pairs
from tests.reference import random_attention, random_mask
from tests.reference import top_fraction_mask as ref_top_fraction_mask

LENGTHS = [5, 1, 3, 7, 2, 10]  # padding everywhere but the longest, and a one-token text


@pytest.fixture
def mask() -> torch.Tensor:
    return random_mask(LENGTHS)


@pytest.fixture
def attention(mask: torch.Tensor) -> torch.Tensor:
    return random_attention(mask, heads=3, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.5, 1.0])
def test_top_fraction_mask_matches_token_loop(mask: torch.Tensor, fraction: float) -> None:
    scores = torch.randn(mask.shape, generator=torch.Generator().manual_seed(0))
    scores[~mask] = 100.0  # padding must never be picked, however high its score
    assert torch.equal(top_fraction_mask(scores, mask, fraction), ref_top_fraction_mask(scores, mask, fraction))


def test_top_fraction_mask_breaks_ties_by_position(mask: torch.Tensor) -> None:
    tied = torch.ones(mask.shape)  # VMASK keep probabilities of a Baseline are all 1
    selected = top_fraction_mask(tied, mask, 0.3)
    assert torch.equal(selected, ref_top_fraction_mask(tied, mask, 0.3))
    assert selected[5].tolist()[:4] == [True, True, True, False]  # 10 tokens: the first 3


def test_top_count_rounds_half_up() -> None:
    assert top_count(torch.tensor([1, 2, 5, 10, 7]), 0.3).tolist() == [0, 1, 2, 3, 2]


def test_attention_received_matches_token_loop(attention: torch.Tensor, mask: torch.Tensor) -> None:
    got = attention_received(attention, mask)
    torch.testing.assert_close(got.double(), ref_attention_received(attention, mask), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.sum(-1), torch.ones(len(LENGTHS)), rtol=0, atol=1e-5)


@pytest.mark.parametrize("fraction", [0.3, 1.0])
def test_correlated_pairs_match_pair_loop(attention: torch.Tensor, mask: torch.Tensor, fraction: float) -> None:
    got = correlated_pairs(attention, mask, fraction)
    assert torch.equal(got, ref_correlated_pairs(attention, mask, fraction))
    assert not got[1].any()  # a one-token text has no pair


def test_pair_mask_is_real_off_diagonal_pairs(mask: torch.Tensor) -> None:
    pairs = pair_mask(mask)
    assert pairs.sum((-1, -2)).tolist() == [n * (n - 1) for n in LENGTHS]
    assert not pairs.diagonal(dim1=-2, dim2=-1).any()


def test_centred_matches_token_loop(mask: torch.Tensor) -> None:
    h = torch.randn(len(LENGTHS), max(LENGTHS), 8, generator=torch.Generator().manual_seed(2))
    got = centred(h, mask)
    torch.testing.assert_close(got.double(), ref_centred(h, mask), rtol=1e-5, atol=1e-5)
    assert (got[~mask] == 0).all()
