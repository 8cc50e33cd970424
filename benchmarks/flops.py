"""FLOPs of a SAFR training step, counted from the shapes (multiply-add = 2 FLOPs).

Per batch of B texts padded to width T, with U distinct tokens (E = d_model, F = d_ff,
H = VMASK hidden, M heads). The model's training cost is 3× its forward (forward, grad of
inputs, grad of weights); the Gram matrix of L_imp likewise; L_inter's A·Aᵀ is one batched
matmul forward and one backward in the project (autograd would use two: `naive`).
"""

from __future__ import annotations


def step_flops(
    b: int, t: int, u: int, *, e: int = 256, f: int = 1024, h: int = 1024, m: int = 8, naive: bool = False
) -> dict[str, float]:
    positions = b * t
    vmask = 2 * (positions if naive else u) * (e * h + h * 2)
    linear = 2 * positions * (3 * e * e + e * e + 2 * e * f)
    attention = 2 * 2 * b * t * t * e
    model_forward = vmask + linear + attention
    gram = 2 * b * t * t * e
    inter = 2 * b * m * t**3
    return {
        "model": 3 * model_forward,
        "loss_imp": 3 * gram,
        "loss_inter": (3 if naive else 2) * inter,
        "total": 3 * model_forward + 3 * gram + (3 if naive else 2) * inter,
    }
