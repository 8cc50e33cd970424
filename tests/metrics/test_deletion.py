from __future__ import annotations

import pytest
import torch

from safr_lightning.metrics.deletion import (
    compact,
    deletion_keep,
    important_tokens,
    n_delete,
    n_keep,
    n_rounded,
    pack,
    rank_tokens,
    sufficiency_keep,
    top_ranked,
)
from tests import reference as ref


def delete_top(
    ids: torch.Tensor, mask: torch.Tensor, scores: torch.Tensor, k: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """What SRS feeds the model after deleting the top k %: the package's primitives composed."""
    return compact(ids, deletion_keep(rank_tokens(scores, mask), mask, k))


def keep_top(
    ids: torch.Tensor, mask: torch.Tensor, scores: torch.Tensor, k: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """What SRS feeds the model for sufficiency (the top k % alone)."""
    return compact(ids, sufficiency_keep(rank_tokens(scores, mask), mask, k))


# Padding everywhere but the longest text, one- and two-token texts.
LENGTHS = [7, 1, 2, 5, 3, 1, 6, 2, 4, 7]
KS = [10, 20, 30, 40, 50, 12.5, 33.3, 75]


def random_batch(seed: int, tie_levels: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ids unique per position (so order is checkable), scores with forced ties, padding scored high."""
    g = torch.Generator().manual_seed(seed)
    mask = ref.random_mask(LENGTHS)
    ids = torch.arange(2, 2 + mask.numel()).view(mask.shape) * mask
    if tie_levels is None:
        scores = torch.randn(mask.shape, generator=g)
    else:  # few distinct values: many ties to break by position
        scores = torch.randint(tie_levels, mask.shape, generator=g).float()
    scores = scores.masked_fill(~mask, 100.0)  # padding must never be chosen, whatever its score
    return ids, mask, scores


@pytest.mark.parametrize(
    ("n", "k", "expected"),
    [
        (15, 10, 2),  # 1.5 rounds up (and 15·10/100 is not exact in binary)
        (5, 10, 1),  # 0.5 rounds up
        (4, 10, 0),
        (25, 10, 3),
        (45, 10, 5),
        (5, 30, 2),
        (7, 30, 2),
        (20, 12.5, 3),
        (10, 12.5, 1),
        (1, 30, 0),
        (1, 50, 0),  # rounds to 1: clamped, a text keeps one token
        (2, 50, 1),
        (3, 50, 2),
        (4, 90, 3),
    ],
)
def test_n_delete_rounds_half_up_and_keeps_a_token(n: int, k: float, expected: int) -> None:
    assert int(n_delete(torch.tensor([n]), k)) == expected


def test_n_delete_and_n_keep_match_exact_rational_rounding() -> None:
    lengths = torch.arange(1, 401)
    for k in KS:
        rounded = [ref.n_rounded(n, k) for n in range(1, 401)]
        assert n_rounded(lengths, k).tolist() == rounded, k
        assert n_delete(lengths, k).tolist() == [min(r, n - 1) for n, r in zip(range(1, 401), rounded, strict=True)]
        assert n_keep(lengths, k).tolist() == [min(max(r, 1), n) for n, r in zip(range(1, 401), rounded, strict=True)]


@pytest.mark.parametrize("tie_levels", [None, 2, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_delete_top_equals_list_implementation(tie_levels: int | None, seed: int) -> None:
    ids, mask, scores = random_batch(seed, tie_levels)
    rows = ref.rows_as_lists(ids, mask)
    row_scores = [[float(scores[b, i]) for i in ref.real_tokens(mask, b)] for b in range(len(LENGTHS))]
    for k in KS:
        new_ids, new_mask = delete_top(ids, mask, scores, k)
        expected = [ref.delete_top(r, s, k) for r, s in zip(rows, row_scores, strict=True)]
        assert ref.rows_as_lists(new_ids, new_mask) == expected, k
        assert new_mask.shape[1] == max(len(e) for e in expected)
        assert (new_ids[~new_mask] == 0).all()
        assert (new_mask.sum(1) >= 1).all()


@pytest.mark.parametrize("tie_levels", [None, 2])
def test_keep_top_equals_list_implementation(tie_levels: int | None) -> None:
    ids, mask, scores = random_batch(3, tie_levels)
    rows = ref.rows_as_lists(ids, mask)
    row_scores = [[float(scores[b, i]) for i in ref.real_tokens(mask, b)] for b in range(len(LENGTHS))]
    for k in KS:
        new_ids, new_mask = keep_top(ids, mask, scores, k)
        assert ref.rows_as_lists(new_ids, new_mask) == [
            ref.keep_top(r, s, k) for r, s in zip(rows, row_scores, strict=True)
        ], k


def test_ties_delete_the_earlier_position_first() -> None:
    ids = torch.tensor([[5, 6, 7, 8]])
    mask = torch.ones(1, 4, dtype=torch.bool)
    new_ids, _ = delete_top(ids, mask, torch.tensor([[1.0, 2.0, 2.0, 2.0]]), 50)
    assert new_ids.tolist() == [[5, 8]]


def test_real_tokens_scored_minus_inf_still_rank_before_padding() -> None:
    mask = torch.tensor([[True, True, False, False]])
    scores = torch.tensor([[float("-inf"), float("-inf"), 0.0, 5.0]])
    ranks = rank_tokens(scores, mask)
    assert ranks[0, :2].tolist() == [0, 1]
    assert top_ranked(ranks, mask, torch.tensor([2])).tolist() == [[True, True, False, False]]


def test_one_token_texts_are_never_emptied() -> None:
    ids = torch.tensor([[9], [4]])
    mask = torch.ones(2, 1, dtype=torch.bool)
    for k in (10, 50, 99):
        new_ids, new_mask = delete_top(ids, mask, torch.zeros(2, 1), k)
        assert new_ids.tolist() == [[9], [4]] and new_mask.all()


def test_pack_moves_kept_positions_to_the_front_in_order() -> None:
    keep = torch.tensor([[False, True, False, True, True], [True, False, False, False, False]])
    source, mask = pack(keep)
    assert mask.tolist() == [[True, True, True], [True, False, False]]
    assert source[0].tolist() == [1, 3, 4] and source[1, 0] == 0


@pytest.mark.parametrize("k", [0, 30, 50, 100, 12.5])
def test_important_tokens_match_token_loop(k: float) -> None:
    mask = ref.random_mask([5, 1, 3, 7, 2, 10, 15])
    scores = torch.randn(mask.shape, generator=torch.Generator().manual_seed(0))
    scores[~mask] = 100.0  # padding must never be picked, however high its score
    assert torch.equal(important_tokens(scores, mask, k), ref.important_tokens(scores, mask, k))


def test_important_tokens_break_ties_by_position() -> None:
    mask = ref.random_mask([5, 1, 3, 7, 2, 10])
    tied = torch.ones(mask.shape)  # VMASK keep probabilities of a Baseline are all 1
    selected = important_tokens(tied, mask)  # Table 3's 30 %
    assert torch.equal(selected, ref.important_tokens(tied, mask, 30))
    assert selected[5].tolist()[:4] == [True, True, True, False]  # 10 tokens: the first 3


def test_important_tokens_count_like_deletion_rounds_half_up() -> None:
    mask = ref.random_mask([1, 2, 5, 10, 7, 15])
    counts = important_tokens(torch.zeros(mask.shape), mask, 30).sum(1)
    assert counts.tolist() == [0, 1, 2, 3, 2, 5]  # 15 · 0.3 = 4.5 rounds up, as SRS counts
