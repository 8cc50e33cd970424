"""Interference, polysemanticity and capacity of token representations (DESIGN §4, paper Eq. 1–3).

Pure functions of one layer's representations ``h`` [B, T, D] and the real-token mask [B, T]
(True = real token). Every sum runs over real tokens only; padding positions get 0. They are
computed in fp32 whatever the input dtype, and all come from the Gram matrix ``G = h hᵀ`` (one
batched matmul), never from loops over tokens.
"""

from __future__ import annotations

import torch


def _masked_gram(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``G_bij = h_bi · h_bj`` for real i, j; 0 where either is padding. [B, T, T]."""
    m = mask.to(torch.float32)
    h = h.float() * m.unsqueeze(-1)
    with torch.autocast(h.device.type, enabled=False):  # in fp32 under bf16-mixed too
        return h @ h.transpose(-1, -2)


def interference(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``I_ij = h_i · h_j`` [B, T, T]; rows and columns of padding are 0."""
    return _masked_gram(h, mask)


def polysemanticity(h: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``P_i = Σ_{j≠i} (ĥ_i · h_j)²`` with ``ĥ_i = h_i / (‖h_i‖ + eps)``; [B, T], 0 at padding."""
    gram = _masked_gram(h, mask)
    off_diagonal = gram * (1 - torch.eye(gram.shape[-1], device=gram.device, dtype=gram.dtype))
    # The norm from h itself (not sqrt(G_ii)), whose gradient at a zero vector is 0, not NaN:
    # VMASK zeroes whole tokens, so zero vectors are common in training.
    norm = torch.linalg.vector_norm(h.float() * mask.unsqueeze(-1), dim=-1)
    return off_diagonal.square().sum(-1) / (norm + eps).square() * mask


def capacity(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``C_i = (h_i · h_i)² / Σ_j (h_i · h_j)²`` (j over real tokens, i included); [B, T].

    0 ≤ C_i ≤ 1 and Σ_i C_i ≥ 1 per text. Padding gets 0, a one-token text 1, and a zero vector
    (a token VMASK dropped, a dead ReLU row) 0: it represents nothing.
    """
    gram = _masked_gram(h, mask)
    self_term = torch.diagonal(gram, dim1=-2, dim2=-1).square()
    total = gram.square().sum(-1)
    return torch.where(total > 0, self_term / total.clamp_min(torch.finfo(total.dtype).tiny), 0.0)


def centred(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``h_i − h̄`` with h̄ the mean of the text's real tokens: [B, T, D], padding 0.

    Post-ReLU layers (FC1) have only non-negative interference ``h_i · h_j``; after centring, its
    sign says whether two tokens are more (+) or less (−) alike than the text's average token.
    """
    m = mask.to(torch.float32).unsqueeze(-1)
    h = h.float() * m
    mean = h.sum(-2, keepdim=True) / m.sum(-2, keepdim=True).clamp_min(1)
    return (h - mean) * m
