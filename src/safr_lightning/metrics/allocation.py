"""Which tokens and token pairs the figures compare: important tokens, attention-correlated pairs.

Pure, batched tensor functions of trace tensors and the real-token mask [B, T] (True = real
token); no loops over tokens. They select; the statistics themselves come from
:mod:`safr_lightning.metrics.superposition`.
"""

from __future__ import annotations

import torch


def top_count(n: torch.Tensor, fraction: float) -> torch.Tensor:
    """``floor(n · fraction + 0.5)``: how many of ``n`` items the top ``fraction`` holds (DESIGN §7's n_k)."""
    return torch.floor(n.to(torch.float64) * fraction + 0.5).long()


def top_fraction_mask(scores: torch.Tensor, mask: torch.Tensor, fraction: float) -> torch.Tensor:
    """The top ``fraction`` of each text's real tokens by ``scores``, [B, T] bool.

    ``scores`` [B, T], ``mask`` [B, T]. A text of n real tokens gets ``floor(n·fraction + 0.5)``
    selected tokens (as the deletion evaluation counts them); ties are broken by position, the
    earlier token first, so the selection is deterministic.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    mask = mask.bool()
    masked = scores.float().masked_fill(~mask, float("-inf"))
    # A stable descending sort ranks equal scores by position.
    order = torch.sort(masked, dim=-1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(-1, order, torch.arange(order.shape[-1], device=order.device).expand_as(order))
    k = top_count(mask.sum(-1), fraction)
    return (rank < k.unsqueeze(-1)) & mask


def attention_received(attention: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean attention each token receives, over heads and real query tokens: [B, T].

    ``attention`` [B, M, T, T] (rows = queries, row-stochastic over real keys). Each real text's
    values sum to 1; padding gets 0.
    """
    m = mask.to(torch.float32)
    per_key = (attention.float().mean(1) * m.unsqueeze(-1)).sum(-2)  # [B, T]: summed over real queries
    return per_key / m.sum(-1, keepdim=True).clamp_min(1) * m


def pair_mask(mask: torch.Tensor) -> torch.Tensor:
    """Real token pairs i ≠ j, [B, T, T] bool."""
    mask = mask.bool()
    eye = torch.eye(mask.shape[-1], dtype=torch.bool, device=mask.device)
    return mask.unsqueeze(-1) & mask.unsqueeze(-2) & ~eye


def correlated_pairs(attention: torch.Tensor, mask: torch.Tensor, fraction: float) -> torch.Tensor:
    """The top ``fraction`` of each text's unordered token pairs by attention, [B, T, T] bool.

    A pair's score is ``(Ā_ij + Ā_ji) / 2`` with Ā the attention averaged over heads, so "i and j
    attend to each other" counts in either direction. Only i < j is marked (each pair once); a text
    of n tokens has n(n−1)/2 pairs of which ``floor(pairs·fraction + 0.5)`` are selected.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    b, t = mask.shape
    mean = attention.float().mean(1)
    score = (mean + mean.transpose(-1, -2)) / 2
    upper = pair_mask(mask) & torch.ones(t, t, dtype=torch.bool, device=mask.device).triu(1)
    flat = top_fraction_mask(score.reshape(b, t * t), upper.reshape(b, t * t), fraction)
    return flat.reshape(b, t, t)


def centred(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``h_i − h̄`` with h̄ the mean of the text's real tokens: [B, T, D], padding 0.

    Post-ReLU layers (FC1) have only non-negative interference ``h_i · h_j``; after centring, its
    sign says whether two tokens are more (+) or less (−) alike than the text's average token.
    """
    m = mask.to(torch.float32).unsqueeze(-1)
    h = h.float() * m
    mean = h.sum(-2, keepdim=True) / m.sum(-2, keepdim=True).clamp_min(1)
    return (h - mean) * m
