"""Selecting, deleting or keeping the top-scored tokens of every text at once (DESIGN §7).

The one place a "top k %" of tokens is chosen: SRS deletion and sufficiency, Table 3's important
tokens, the allocation figures and the correlated pairs all rank with :func:`rank_tokens` and
count with :func:`n_rounded`.

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
# Table 3: the top 30 % of each text by VMASK keep probability are its "important" tokens.
IMPORTANT_K = 30.0


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


def top_ranked(ranks: torch.Tensor, mask: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """The real tokens ranked below ``counts`` [B]: bool [..., B, T] for ``ranks`` [..., B, T].

    ``ranks`` from :func:`rank_tokens` (a leading dimension holds several scorings of one batch).
    """
    return (ranks < counts[:, None]) & mask


def important_tokens(scores: torch.Tensor, mask: torch.Tensor, k: float = IMPORTANT_K) -> torch.Tensor:
    """Each text's top ``k`` % real tokens by ``scores`` (``n_k`` of n, may be 0): bool [B, T].

    Table 3's "important tokens" are ``important_tokens(vmask_prob, mask)``: the top 30 % by VMASK
    keep probability. SRS, the allocation statistics, the figures and the neuron analysis all
    select them here, so they count the same tokens.
    """
    mask = mask.bool()
    return top_ranked(rank_tokens(scores, mask), mask, n_rounded(mask.sum(-1), k))


def deletion_keep(ranks: torch.Tensor, mask: torch.Tensor, k: float) -> torch.Tensor:
    """What survives deleting each text's ``n_delete`` top-ranked tokens: bool [..., B, T]."""
    return mask & ~top_ranked(ranks, mask, n_delete(mask.sum(-1), k))


def sufficiency_keep(ranks: torch.Tensor, mask: torch.Tensor, k: float) -> torch.Tensor:
    """The top-``k`` % rationale each text keeps (``n_keep`` tokens, at least one): bool [..., B, T]."""
    return top_ranked(ranks, mask, n_keep(mask.sum(-1), k))


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


def gather_kept(input_ids: torch.Tensor, source: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Token ids at the packed positions: ``input_ids`` [R, T], ``source``/``mask`` [R, W] -> [R, W], PAD elsewhere."""
    return torch.where(mask, input_ids.gather(1, source), PAD_ID)


def compact(input_ids: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``keep`` [B, T] tokens of ``input_ids`` [B, T], gaps closed, re-padded: ``(ids, mask)`` [B, W].

    With :func:`deletion_keep` or :func:`sufficiency_keep`, this is what SRS feeds the model.
    """
    source, mask = pack(keep)
    return gather_kept(input_ids, source, mask), mask
