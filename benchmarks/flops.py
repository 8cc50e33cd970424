"""FLOPs of a SAFR training step, counted from the shapes (multiply-add = 2 FLOPs).

Per batch of B texts padded to width T, with U distinct tokens (E = d_model, F = d_ff,
H = VMASK hidden, M heads). The model's training cost is 3× its forward (forward, grad of
inputs, grad of weights); the Gram matrix of L_imp likewise; L_inter's A·Aᵀ is one batched
matmul forward and one backward in the project (autograd would use two: `naive`).

``keys`` K (paper mode: the batch's longest real text; T otherwise): keys and values exist for the
first K positions only (the rest are PAD keys, masked), so the K/V projections, the attention
scores and L_inter's ``A·A[:K]ᵀ`` (autograd: ×3) count K where the full version counts T.
"""

from __future__ import annotations


def step_flops(
    b: int,
    t: int,
    u: int,
    *,
    e: int = 256,
    f: int = 1024,
    h: int = 1024,
    m: int = 8,
    naive: bool = False,
    keys: int | None = None,
) -> dict[str, float]:
    k = t if keys is None else keys
    positions = b * t
    vmask = 2 * (positions if naive else u) * (e * h + h * 2)
    linear = 2 * positions * (e * e + e * e + 2 * e * f) + 2 * b * k * 2 * e * e  # Q, out, FFN; K, V
    attention = 2 * 2 * b * t * k * e
    model_forward = vmask + linear + attention
    gram = 2 * b * t * t * e
    if keys is None:
        inter = (3 if naive else 2) * 2 * b * m * t**3
    else:  # the paper's L_inter on the compact trace: A [T, K] · A[:K]ᵀ, autograd
        inter = 3 * 2 * b * m * t * k * k
    return {
        "model": 3 * model_forward,
        "loss_imp": 3 * gram,
        "loss_inter": inter,
        "total": 3 * model_forward + 3 * gram + inter,
    }
