"""SAFR's loss: ``L = CE + λ_imp · L_imp + λ_inter · L_inter (+ β · VMASK information)`` (DESIGN §5).

In exact mode padding never enters a term. The official code lets PAD into both regularizers;
``fidelity.regularizers=paper`` computes its formulas (``paper_importance_loss``,
``paper_interaction_loss``) for the paper mode (DESIGN §5b).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from safr_lightning.metrics.superposition import polysemanticity

PAPER_NORM_EPS = 1e-5  # the official code's x / (1e-5 + ‖x‖)


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt with gradient 0 (not inf · 0 = NaN) at 0, the value of a one-token text."""
    positive = x > 0
    return torch.where(positive, torch.where(positive, x, 1.0).sqrt(), 0.0)


def importance_loss(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``L_imp = Σ_{b,i} m_bi sqrt(P_bi / E) / Σ m`` on the VMASK output h [B, T, E]; a scalar."""
    m = mask.to(torch.float32)
    poly = polysemanticity(h, mask)
    return (_safe_sqrt(poly / h.shape[-1]) * m).sum() / m.sum().clamp_min(1)


class _InteractionSum(torch.autograd.Function):
    """``Σ_{b,α,i,j} W_bij A_bαij (1 − (A Aᵀ)_bαij)`` with ``W_bij = m_bi m_bj`` (``(1 − δ_ij)`` too
    unless ``include_self``): the numerator of L_inter, its gradient written out by hand.

    At IMDB lengths A is [32, 8, 256, 256]; every elementwise pass over it costs about as much as
    the T³ matmul, so the arithmetic is arranged for few passes. With ``Â`` = A with padded query
    rows zeroed (padded key columns are zero already) and ``I = Â Âᵀ``:
    forward, one write (Â), one matmul, two reads (``Σ Â`` and the dot product ``⟨Â, I⟩``);
    backward, ``∂/∂Â = W − W ⊙ I − (C + Cᵀ) Â`` with ``C = W ⊙ Â``, one matmul (fused with the
    ``+ I``) and three passes, where autograd would spend two matmuls and about ten passes.
    """

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, m: torch.Tensor, include_self: bool) -> torch.Tensor:
        with torch.autocast(a.device.type, enabled=False):  # fp32 under bf16-mixed too
            return _InteractionSum._forward(ctx, a, m, include_self)

    @staticmethod
    def _forward(ctx: Any, a: torch.Tensor, m: torch.Tensor, include_self: bool) -> torch.Tensor:
        rows = m[:, None, :, None]
        am = a * rows
        inter = am @ am.transpose(-1, -2)
        total = am.sum() - torch.dot(am.reshape(-1), inter.reshape(-1))
        if not include_self:  # drop i = j: Σ_i Â_ii (1 − I_ii)
            diag_a = am.diagonal(dim1=-2, dim2=-1)
            total = total - (diag_a * (1 - inter.diagonal(dim1=-2, dim2=-1))).sum()
        ctx.include_self = include_self
        ctx.save_for_backward(am, inter, m)
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        with torch.autocast(grad.device.type, enabled=False):
            return _InteractionSum._backward(ctx, grad)

    @staticmethod
    def _backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        am, inter, m = ctx.saved_tensors
        w = m[:, None, :, None] * m[:, None, None, :]  # [B, 1, T, T]
        sym = am + am.transpose(-1, -2)  # C + Cᵀ, before taking the diagonal out
        if not ctx.include_self:
            w = w * (1 - torch.eye(w.shape[-1], device=w.device, dtype=w.dtype))
            sym.diagonal(dim1=-2, dim2=-1).sub_(2 * am.diagonal(dim1=-2, dim2=-1))
        # d(Σ W⊙Â⊙I)/dÂ = W⊙I + (C + Cᵀ)Â; W⊙I is I with padding and (maybe) the diagonal zeroed.
        d_inter = torch.baddbmm(inter.flatten(0, 1), sym.flatten(0, 1), am.flatten(0, 1)).view_as(am)  # I + (C + Cᵀ) Â
        if not ctx.include_self:
            d_inter.diagonal(dim1=-2, dim2=-1).sub_(inter.diagonal(dim1=-2, dim2=-1))
        d_inter.sub_(w)  # now −∂total/∂Â
        return d_inter.mul_(-grad * m[:, None, :, None]), None, None  # ∂Â/∂A: the row mask


def interaction_loss(attention: torch.Tensor, mask: torch.Tensor, include_self: bool = False) -> torch.Tensor:
    """``L_inter = Σ_{b,α,i≠j} m_bi m_bj A_bαij (1 − I^A_bαij) / (M · Σ_b n_b (n_b − 1))``; a scalar.

    ``attention`` A [B, M, T, T] (rows sum to 1 over real keys), ``I^A = A Aᵀ`` per head: one
    batched matmul forward and one backward, O(T³) per head, never a [.., T, T, T] tensor.
    ``include_self`` sums over all pairs (i = j too) and divides by ``M · Σ n_b²``: the paper's
    printed formula.
    """
    a = attention.float()
    key_len = a.shape[-1]
    if key_len < a.shape[-2]:  # a compact trace (A's first K key columns): rows after K are PAD queries
        a, mask = a[:, :, :key_len], mask[:, :key_len]
    m = mask.to(a.dtype)
    n = m.sum(-1)
    pairs = n.square().sum() if include_self else (n * (n - 1)).sum()
    return _InteractionSum.apply(a, m, include_self) / (a.shape[1] * pairs).clamp_min(1)


def paper_importance_loss(h: torch.Tensor) -> torch.Tensor:
    """The official code's L_imp: every position of the padded batch counts, PAD included; a scalar.

    Mean over all B·L positions of ``‖(x̂_i · x_j)_{j≠i}‖ / sqrt(E)``, ``x̂_i = x_i / (‖x_i‖ + 1e-5)``
    (the paper's eps), on the VMASK output h [B, L, E]. Equal to DESIGN's L_imp with an all-true mask.
    """
    every = torch.ones(h.shape[:2], dtype=torch.bool, device=h.device)
    return _safe_sqrt(polysemanticity(h, every, eps=PAPER_NORM_EPS) / h.shape[-1]).mean()


def paper_interaction_loss(attention: torch.Tensor) -> torch.Tensor:
    """The official code's L_inter: ``mean(A_norm · (1 − I))`` over all B·H·L·L entries; a scalar.

    ``I = A Aᵀ`` per head with its diagonal zeroed (A's diagonal is kept), PAD query rows included;
    PAD key columns of A are 0 (masked keys). ``A_norm = A / rowsum(A)`` is A itself: softmax rows
    sum to 1, and the normalisation's gradient is a per-row constant that the softmax's backward
    removes. So the sum is ``Σ_{i≠j} A_ij (1 − I_ij) + Σ_i A_ii``.

    ``attention`` is A [B, M, L, K]: its first K key columns (K = L, or the compact trace's K, after
    which every column is a PAD key's, all zero). Only ``I[:, :K] = A · A[:K]ᵀ`` can meet a nonzero
    A, so the work is L·K² per head instead of L³; the mean still divides by B·M·L·L.
    """
    a = attention.float()
    b, heads, length, key_len = a.shape
    inter = a @ a[:, :, :key_len].transpose(-1, -2)  # [B, M, L, K]: I_ij for the key columns j < K
    diagonal = torch.eye(length, key_len, dtype=torch.bool, device=a.device)
    total = (a * (1 - inter.masked_fill(diagonal, 0.0))).sum()
    return total / (b * heads * length * length)


def vmask_information(q: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean over real tokens of ``q log q + (1 − q) log(1 − q)`` (VMASK's β term); a scalar.

    q: [B, T] keep probabilities softmax(p)[..., 1].
    """
    q = q.float().clamp(eps, 1 - eps)
    neg_entropy = q * q.log() + (1 - q) * (1 - q).log()
    m = mask.to(neg_entropy.dtype)
    return (neg_entropy * m).sum() / m.sum().clamp_min(1)


@dataclass(frozen=True)
class LossWeights:
    imp: float = 0.0
    inter: float = 0.0
    beta: float = 0.0
    inter_include_self: bool = False
    # "exact" (DESIGN §5: real tokens only) or "paper" (the official formulas, PAD included).
    regularizers: str = "exact"


def safr_loss(
    logits: torch.Tensor, labels: torch.Tensor, trace: dict[str, torch.Tensor], weights: LossWeights
) -> dict[str, torch.Tensor]:
    """Every term of the loss, by name: ``loss_ce``, ``loss_imp``, ``loss_inter`` (+ ``loss_info``), ``loss``.

    Terms whose weight is 0 are still computed (detached) so they can be logged and compared
    across the λ grid; they cost one Gram matrix and one A·Aᵀ per batch.
    """
    mask = trace["attention_mask"]
    terms: dict[str, torch.Tensor] = {"loss_ce": F.cross_entropy(logits.float(), labels)}
    paper = weights.regularizers == "paper"
    with torch.set_grad_enabled(torch.is_grad_enabled() and weights.imp > 0):
        h = trace["vmask"]
        terms["loss_imp"] = paper_importance_loss(h) if paper else importance_loss(h, mask)
    with torch.set_grad_enabled(torch.is_grad_enabled() and weights.inter > 0):
        a = trace["attention"]
        terms["loss_inter"] = (
            paper_interaction_loss(a) if paper else interaction_loss(a, mask, weights.inter_include_self)
        )
    total = terms["loss_ce"] + weights.imp * terms["loss_imp"] + weights.inter * terms["loss_inter"]
    if weights.beta > 0:
        terms["loss_info"] = vmask_information(trace["vmask_prob"], mask)
        total = total + weights.beta * terms["loss_info"]
    terms["loss"] = total
    return terms
