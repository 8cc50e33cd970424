from __future__ import annotations

import pytest
import torch

from safr_lightning.errors import ConfigError
from safr_lightning.metrics.deletion import rank_tokens, top_ranked
from safr_lightning.metrics.scorers import (
    attention_scores,
    capacity_scores,
    random_scores,
    token_scores,
    vmask_scores,
)
from safr_lightning.metrics.superposition import capacity
from safr_lightning.model.transformer import SAFRTransformer
from tests import reference as ref

LENGTHS = [6, 1, 3, 2, 5]


@pytest.fixture
def traced() -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    model = SAFRTransformer(40, 2, d_model=16, n_heads=4, d_ff=32, vmask_hidden=8).eval()
    mask = ref.random_mask(LENGTHS)
    ids = torch.randint(2, 40, mask.shape, generator=torch.Generator().manual_seed(1)) * mask
    with torch.no_grad():
        trace = model(ids, mask, return_trace=True).trace
    return ids, mask, trace


def test_capacity_scores_are_capacity_of_the_layer_and_minus_inf_at_padding(traced) -> None:
    _, mask, trace = traced
    for layer in ("fc1", "vmask", "block_out"):
        scores = capacity_scores(trace, layer)
        torch.testing.assert_close(scores[mask], capacity(trace[layer], mask)[mask])
        assert torch.isneginf(scores[~mask]).all()


def test_vmask_scores_are_keep_probabilities(traced) -> None:
    _, mask, trace = traced
    scores = vmask_scores(trace)
    torch.testing.assert_close(scores[mask], trace["vmask_prob"][mask])
    assert torch.isneginf(scores[~mask]).all()


def test_attention_scores_match_loop_over_heads_and_real_queries(traced) -> None:
    _, mask, trace = traced
    scores = attention_scores(trace)
    expected = ref.attention_received(trace["attention"], mask)
    torch.testing.assert_close(scores[mask].double(), expected[mask], rtol=1e-5, atol=1e-6)
    assert torch.isneginf(scores[~mask]).all()


def test_random_scores_depend_only_on_seed_draw_text_and_position() -> None:
    mask = ref.random_mask(LENGTHS)
    index = torch.tensor([10, 11, 12, 13, 14])
    scores = random_scores(index, mask, seed=3, draw=1)
    assert ((scores[mask] >= 0) & (scores[mask] < 1)).all() and torch.isneginf(scores[~mask]).all()
    # The same text alone, in another batch position and a wider batch, gets the same scores.
    alone = random_scores(torch.tensor([13, 10]), torch.ones(2, 8, dtype=torch.bool), seed=3, draw=1)
    torch.testing.assert_close(alone[0, :2], scores[3, :2], rtol=0, atol=0)
    torch.testing.assert_close(alone[1, :6], scores[0, :6], rtol=0, atol=0)
    assert not torch.equal(random_scores(index, mask, seed=3, draw=2)[mask], scores[mask])
    assert not torch.equal(random_scores(index, mask, seed=4, draw=1)[mask], scores[mask])


def test_random_deletion_picks_every_position_about_equally_often() -> None:
    n, width, pick = 6000, 10, 3
    mask = torch.ones(n, width, dtype=torch.bool)
    chosen = top_ranked(rank_tokens(random_scores(torch.arange(n), mask, seed=0), mask), mask, torch.full((n,), pick))
    frequency = chosen.float().mean(0)  # each position: expected 0.3, binomial sd ≈ 0.006
    assert (frequency - pick / width).abs().max() < 0.025
    assert chosen.sum(1).eq(pick).all()


def test_token_scores_dispatches_and_refuses_unknown_scorer(traced) -> None:
    _, mask, trace = traced
    torch.testing.assert_close(token_scores("capacity", trace, layer="fc1"), capacity_scores(trace, "fc1"))
    torch.testing.assert_close(token_scores("attention", trace), attention_scores(trace))
    index = torch.arange(len(LENGTHS))
    torch.testing.assert_close(token_scores("random", trace, index=index, seed=5), random_scores(index, mask, 5))
    with pytest.raises(ConfigError, match=r"srs\.scorer='nope'"):
        token_scores("nope", trace)
    with pytest.raises(ConfigError, match=r"srs\.layer='fc9'"):
        token_scores("capacity", trace, layer="fc9")
