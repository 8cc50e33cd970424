"""Slow, obviously-correct reference implementations: plain Python loops over tokens."""

from __future__ import annotations

import math

import torch


def real_tokens(mask: torch.Tensor, b: int) -> list[int]:
    return [i for i in range(mask.shape[1]) if bool(mask[b, i])]


def interference(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    B, T, _ = h.shape
    out = torch.zeros(B, T, T, dtype=torch.float64)
    for b in range(B):
        for i in real_tokens(mask, b):
            for j in real_tokens(mask, b):
                out[b, i, j] = float(torch.dot(h[b, i].double(), h[b, j].double()))
    return out


def polysemanticity(h: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    B, T, _ = h.shape
    out = torch.zeros(B, T, dtype=torch.float64)
    for b in range(B):
        for i in real_tokens(mask, b):
            hi = h[b, i].double()
            unit = hi / (hi.norm() + eps)
            out[b, i] = sum(float(torch.dot(unit, h[b, j].double())) ** 2 for j in real_tokens(mask, b) if j != i)
    return out


def capacity(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    B, T, _ = h.shape
    out = torch.zeros(B, T, dtype=torch.float64)
    for b in range(B):
        for i in real_tokens(mask, b):
            hi = h[b, i].double()
            num = float(torch.dot(hi, hi)) ** 2
            den = sum(float(torch.dot(hi, h[b, j].double())) ** 2 for j in real_tokens(mask, b))
            out[b, i] = num / den if den > 0 else 0.0
    return out


def importance_loss(h: torch.Tensor, mask: torch.Tensor) -> float:
    poly = polysemanticity(h, mask)
    E = h.shape[-1]
    values = [math.sqrt(float(poly[b, i]) / E) for b in range(h.shape[0]) for i in real_tokens(mask, b)]
    return sum(values) / len(values)


def interaction_loss(a: torch.Tensor, mask: torch.Tensor, include_self: bool = False) -> float:
    B, M = a.shape[:2]
    total, pairs = 0.0, 0
    for b in range(B):
        real = real_tokens(mask, b)
        for i in real:
            for j in real:
                if i == j and not include_self:
                    continue
                pairs += 1
                for alpha in range(M):
                    inter = sum(float(a[b, alpha, i, k]) * float(a[b, alpha, j, k]) for k in real)
                    total += float(a[b, alpha, i, j]) * (1 - inter)
    return total / (M * pairs) if pairs else 0.0


def random_mask(lengths: list[int], T: int | None = None) -> torch.Tensor:
    T = T or max(lengths)
    return torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]


def random_attention(mask: torch.Tensor, heads: int, generator: torch.Generator) -> torch.Tensor:
    """Row-stochastic attention over real keys, like the model's, [B, M, T, T]."""
    B, T = mask.shape
    scores = torch.randn(B, heads, T, T, generator=generator)
    scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    return scores.softmax(-1)


def top_fraction_mask(scores: torch.Tensor, mask: torch.Tensor, fraction: float) -> torch.Tensor:
    """Per text: the floor(n·fraction + 0.5) highest scores, ties to the earlier position."""
    out = torch.zeros(mask.shape, dtype=torch.bool)
    for b in range(mask.shape[0]):
        real = real_tokens(mask, b)
        k = math.floor(len(real) * fraction + 0.5)
        ranked = sorted(real, key=lambda i: (-float(scores[b, i]), i))
        for i in ranked[:k]:
            out[b, i] = True
    return out


def attention_received(a: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over heads and real queries of the attention each real key gets."""
    B, M, T, _ = a.shape
    out = torch.zeros(B, T, dtype=torch.float64)
    for b in range(B):
        real = real_tokens(mask, b)
        for j in real:
            out[b, j] = sum(float(a[b, h, i, j]) for h in range(M) for i in real) / (M * len(real))
    return out


def correlated_pairs(a: torch.Tensor, mask: torch.Tensor, fraction: float) -> torch.Tensor:
    """Per text: the top fraction of pairs i < j by (mean_h A_ij + mean_h A_ji) / 2; ties: earlier pair."""
    B, M, T, _ = a.shape
    out = torch.zeros(B, T, T, dtype=torch.bool)
    for b in range(B):
        real = real_tokens(mask, b)
        pairs = [(i, j) for i in real for j in real if i < j]
        score = {(i, j): sum(float(a[b, h, i, j]) + float(a[b, h, j, i]) for h in range(M)) / (2 * M) for i, j in pairs}
        k = math.floor(len(pairs) * fraction + 0.5)
        for i, j in sorted(pairs, key=lambda p: (-score[p], p[0] * T + p[1]))[:k]:
            out[b, i, j] = True
    return out


def centred(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(h.shape, dtype=torch.float64)
    for b in range(h.shape[0]):
        real = real_tokens(mask, b)
        mean = sum(h[b, i].double() for i in real) / len(real)
        for i in real:
            out[b, i] = h[b, i].double() - mean
    return out
