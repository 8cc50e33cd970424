"""Token scores for deletion (DESIGN §7): which tokens a model deems important, read from a trace.

Every scorer maps a trace (and the batch) to scores [B, T]; higher = more important = deleted
first. Padding always scores -inf.

- ``capacity``: capacity (§4) of the representations at a traced layer (default ``fc1``).
- ``vmask``: VMASK's keep probability ``q`` (the eval-mode mask value).
- ``attention``: attention *received*: mean over heads and over real query tokens of A[:, :, i, j].
- ``random``: uniform scores from a counter-based hash of ``(seed, draw, example index, position)``,
  so a random deletion does not depend on batch size, batch order or which other texts are evaluated.
"""

from __future__ import annotations

import torch

from safr_lightning.errors import ConfigError
from safr_lightning.metrics.attention import attention_received
from safr_lightning.metrics.superposition import capacity

Trace = dict[str, torch.Tensor]


def _mask_padding(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    scores = scores if scores.dtype == torch.float64 else scores.float()
    return scores.masked_fill(~mask.bool(), float("-inf"))


def capacity_scores(trace: Trace, layer: str = "fc1") -> torch.Tensor:
    """Capacity of each token at ``trace[layer]`` [B, T, D]; [B, T], -inf at padding."""
    if layer not in trace:
        raise ConfigError(f"invalid config: srs.layer={layer!r}; the trace has {', '.join(sorted(trace))}")
    mask = trace["attention_mask"]
    return _mask_padding(capacity(trace[layer], mask), mask)


def vmask_scores(trace: Trace) -> torch.Tensor:
    """VMASK keep probability ``q`` [B, T] (what the eval-mode mask multiplies each token by)."""
    return _mask_padding(trace["vmask_prob"], trace["attention_mask"])


def attention_scores(trace: Trace) -> torch.Tensor:
    """Attention received by each key token, averaged over heads and real query rows; [B, T].

    ``trace["attention"]`` is A [B, M, T, T] (rows: queries, columns: keys) of the first block.
    """
    mask = trace["attention_mask"]
    return _mask_padding(attention_received(trace["attention"], mask), mask)


# 32-bit integer mixing ("lowbias"-style, constants < 2^28 so int64 products never overflow).
_MIX = 0x045D9F3B
_U32 = 0xFFFFFFFF


def _mix32(x: torch.Tensor) -> torch.Tensor:
    x = ((x >> 16) ^ x) * _MIX & _U32
    x = ((x >> 16) ^ x) * _MIX & _U32
    return (x >> 16) ^ x


def random_scores(index: torch.Tensor, mask: torch.Tensor, seed: int, draw: int = 0) -> torch.Tensor:
    """Uniform [0, 1) scores that depend only on ``(seed, draw, index[b], position)``; [B, T].

    ``index`` [B] identifies each text in its split (the batch's ``index``); ``mask`` [B, T].
    """
    t = mask.shape[1]
    device = mask.device
    x = _mix32(torch.full((), (seed * 1_000_003 + draw) & _U32, dtype=torch.long, device=device))
    x = _mix32(x ^ (index.long().to(device)[:, None] & _U32))
    x = _mix32(x ^ torch.arange(t, device=device)[None, :])
    # float64: 32 random bits survive, so ties (broken by position) stay vanishingly rare.
    return _mask_padding(x.double() / 2**32, mask)


def token_scores(
    scorer: str,
    trace: Trace,
    *,
    layer: str = "fc1",
    index: torch.Tensor | None = None,
    seed: int = 0,
    draw: int = 0,
) -> torch.Tensor:
    """Scores of ``scorer`` (capacity | vmask | attention | random) for the batch the trace came from.

    ``random`` needs ``index`` [B] (each text's position in its split), ``seed`` and ``draw``.
    """
    if scorer == "capacity":
        return capacity_scores(trace, layer)
    if scorer == "vmask":
        return vmask_scores(trace)
    if scorer == "attention":
        return attention_scores(trace)
    if scorer == "random":
        mask = trace["attention_mask"]
        if index is None:
            index = torch.arange(mask.shape[0], device=mask.device)
        return random_scores(index, mask, seed, draw)
    raise ConfigError(f"invalid config: srs.scorer={scorer!r}; allowed: capacity | random | vmask | attention")
