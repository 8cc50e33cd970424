"""Deleting (or keeping) the top-scored tokens of every text at once (DESIGN §7).

Pure, batched tensor functions: no Python loop over tokens or texts. A text of ``n`` real tokens
loses its ``n_k = floor(n·k/100 + 0.5)`` highest-scored tokens; the survivors close ranks (their
order is kept) and the batch is re-padded to its new longest text.

Ties: when two tokens have the same score, the *earlier* position ranks higher (is deleted first).
Padding never ranks, whatever its score.
"""

from __future__ import annotations

import torch

from safr_lightning.data.special_tokens import PAD_ID

# n·k/100 is computed in float64; a value meant to be exactly x.5 (15·10/100) may land a hair
# below it in binary. This guard makes half always round up, as the formula says.
_ROUND_GUARD = 1e-9


def n_rounded(lengths: torch.Tensor, k: float) -> torch.Tensor:
    """``floor(n·k/100 + 0.5)`` for each length ``n`` [B] (long), half rounding up; not clamped."""
    return torch.floor(lengths.double() * (float(k) / 100.0) + 0.5 + _ROUND_GUARD).long()


def n_delete(lengths: torch.Tensor, k: float) -> torch.Tensor:
    """How many tokens deletion at ``k`` % removes from texts of ``lengths`` [B]: ``n_k``, at most n - 1.

    At least one token always survives, so a deleted text is never empty.
    """
    return torch.minimum(n_rounded(lengths, k), (lengths - 1).clamp_min(0))


def n_keep(lengths: torch.Tensor, k: float) -> torch.Tensor:
    """How many tokens the top-``k`` % rationale holds (sufficiency): ``n_k``, at least 1, at most n."""
    return torch.minimum(n_rounded(lengths, k).clamp_min(1), lengths)


def rank_tokens(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Rank of every real token in its text, 0 = highest score; ties go to the earlier position. [B, T].

    Padding ranks after every real token (its rank is meaningless). ``scores`` [B, T], ``mask`` [B, T].
    """
    # Sort key: real tokens by descending score, then padding. A stable sort keeps equal scores
    # in position order; real tokens scored -inf still come before padding thanks to the second sort.
    key = (scores if scores.is_floating_point() else scores.double()).masked_fill(~mask, float("-inf"))
    order = torch.sort(key, dim=1, descending=True, stable=True).indices
    order = order.gather(1, torch.sort((~mask).gather(1, order).byte(), dim=1, stable=True).indices)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    return ranks


def top_tokens(scores: torch.Tensor, mask: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """The ``counts`` [B] highest-scored real tokens of each text, as a bool mask [B, T]."""
    return (rank_tokens(scores, mask) < counts[:, None]) & mask


def pack(keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the ``keep`` [B, T] tokens of each row go when the gaps close (their order is kept).

    Returns ``(source [B, W] long, attention_mask [B, W] bool)``: new position j of row b holds old
    position ``source[b, j]``; ``W`` is the largest number of kept tokens in a row (at least 1), and
    ``source`` at padding points at an arbitrary old position.
    """
    # A stable sort of the drop flags moves kept positions to the front without reordering them.
    source = torch.sort((~keep).byte(), dim=1, stable=True).indices
    counts = keep.sum(1)
    width = max(int(counts.max()), 1) if counts.numel() else 1
    mask = torch.arange(width, device=keep.device)[None, :] < counts[:, None]
    return source[:, :width], mask


def compact(input_ids: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``keep`` [B, T] tokens of ``input_ids`` [B, T], gaps closed, re-padded: ``(ids, mask)`` [B, W]."""
    source, mask = pack(keep)
    return torch.where(mask, input_ids.gather(1, source), PAD_ID), mask


def delete_top(
    input_ids: torch.Tensor, mask: torch.Tensor, scores: torch.Tensor, k: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Delete each text's ``n_k`` highest-scored real tokens, close the gaps, re-pad.

    ``input_ids`` [B, T], ``mask`` [B, T] (True = real), ``scores`` [B, T] -> ``(input_ids, mask)`` [B, W].
    """
    mask = mask.bool()
    drop = top_tokens(scores, mask, n_delete(mask.sum(1), k))
    return compact(input_ids, mask & ~drop)


def keep_top(
    input_ids: torch.Tensor, mask: torch.Tensor, scores: torch.Tensor, k: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep only each text's top-``k`` % tokens (at least one), in their original order; [B, W]."""
    mask = mask.bool()
    keep = top_tokens(scores, mask, n_keep(mask.sum(1), k))
    return compact(input_ids, keep)
