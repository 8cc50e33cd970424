"""What attention says about tokens: attention received, and the attention-correlated token pairs.

Pure, batched tensor functions of the attention A [B, M, T, T] and the real-token mask [B, T]
(True = real token); no loops over tokens. The top-k % choice itself is
:func:`safr_lightning.metrics.deletion.important_tokens`, as everywhere else.
"""

from __future__ import annotations

import torch

from safr_lightning.metrics.deletion import important_tokens


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


def correlated_pairs(attention: torch.Tensor, mask: torch.Tensor, k: float) -> torch.Tensor:
    """The top ``k`` % of each text's unordered token pairs by attention, [B, T, T] bool.

    A pair's score is ``(Ā_ij + Ā_ji) / 2`` with Ā the attention averaged over heads, so "i and j
    attend to each other" counts in either direction. Only i < j is marked (each pair once); a text
    of n tokens has n(n−1)/2 pairs of which ``floor(pairs·k/100 + 0.5)`` are selected; ties go to
    the earlier pair in row-major order.
    """
    if not 0.0 <= k <= 100.0:
        raise ValueError(f"k must be in [0, 100], got {k}")
    b, t = mask.shape
    mean = attention.float().mean(1)
    score = (mean + mean.transpose(-1, -2)) / 2
    upper = pair_mask(mask) & torch.ones(t, t, dtype=torch.bool, device=mask.device).triu(1)
    flat = important_tokens(score.reshape(b, t * t), upper.reshape(b, t * t), k)
    return flat.reshape(b, t, t)
