"""The optimized paths (deduplicated VMASK, one-matmul L_inter backward) against straightforward code."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from safr_lightning.losses import importance_loss, interaction_loss
from safr_lightning.model.transformer import SAFRTransformer
from tests.reference import random_mask


def straightforward_forward(model: SAFRTransformer, ids: torch.Tensor, mask: torch.Tensor) -> dict:
    """The model's eval-mode forward written out plainly: every position embedded and masked."""
    m = mask.unsqueeze(-1).float()
    e = model.embedding(ids) * math.sqrt(model.d_model)
    q = model.vmask.out(torch.tanh(model.vmask.proj(e))).softmax(-1)[..., 1]
    h = e * (q * mask).unsqueeze(-1)
    x = h + model.positions[: ids.shape[1]]
    block = model.blocks[0]
    b, t, d = x.shape
    qkv = block.attn.qkv(x).view(b, t, 3, model.n_heads, d // model.n_heads).permute(2, 0, 3, 1, 4)
    scores = qkv[0] @ qkv[1].transpose(-1, -2) / math.sqrt(d // model.n_heads)
    a = scores.masked_fill(~mask[:, None, None, :], float("-inf")).softmax(-1)
    attn_out = block.attn.out((a @ qkv[2]).transpose(1, 2).reshape(b, t, d))
    x = block.norm1(x + attn_out)
    x = block.norm2(x + block.fc2(F.relu(block.fc1(x))))
    logits = model.classifier((x * m).sum(1) / m.sum(1))
    return {"logits": logits, "vmask": h, "attention": a}


def straightforward_interaction(a: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.float()
    pair = m[:, None, :, None] * m[:, None, None, :] * (1 - torch.eye(a.shape[-1]))
    n = m.sum(-1)
    return (pair * a * (1 - a @ a.transpose(-1, -2))).sum() / (a.shape[1] * (n * (n - 1)).sum())


def test_fast_forward_and_losses_equal_straightforward_path() -> None:
    torch.manual_seed(0)
    model = SAFRTransformer(60, 2, d_model=32, n_heads=4, d_ff=64, vmask_hidden=16).eval()
    ids = torch.randint(2, 60, (6, 11))
    ids[:, 5:][torch.rand(6, 6) < 0.5] = 7  # repeated tokens: the deduplication has work to do
    lengths = torch.tensor([11, 1, 4, 9, 2, 6])
    mask = torch.arange(11)[None, :] < lengths[:, None]
    ids = ids * mask
    fast = model(ids, mask, return_trace=True)
    slow = straightforward_forward(model, ids, mask)
    torch.testing.assert_close(fast.logits, slow["logits"], atol=1e-5, rtol=0)
    torch.testing.assert_close(
        importance_loss(fast.trace["vmask"], mask), importance_loss(slow["vmask"], mask), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        interaction_loss(fast.trace["attention"], mask),
        straightforward_interaction(slow["attention"], mask),
        atol=1e-5,
        rtol=0,
    )


def test_interaction_loss_gradient_equals_autograd_of_the_formula() -> None:
    g = torch.Generator().manual_seed(2)
    mask = random_mask([7, 1, 3, 5])
    scores = torch.randn(4, 3, 7, 7, generator=g, dtype=torch.float64)
    scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    fast_scores = scores.clone().requires_grad_(True)
    slow_scores = scores.clone().requires_grad_(True)
    interaction_loss(fast_scores.softmax(-1), mask).backward()
    a = slow_scores.softmax(-1)
    straightforward_interaction(a.double(), mask).backward()
    torch.testing.assert_close(fast_scores.grad, slow_scores.grad, atol=1e-6, rtol=1e-4)  # fp32 inside


def test_interaction_loss_gradient_with_respect_to_a_itself() -> None:
    """Directly in A (not through softmax, where row-constant terms of the gradient would vanish)."""
    g = torch.Generator().manual_seed(4)
    mask = random_mask([6, 1, 4, 2])
    for include_self in (False, True):
        a = torch.rand(4, 3, 6, 6, generator=g) * mask[:, None, None, :]  # zero padded keys, as softmax gives
        fast, slow = a.clone().requires_grad_(True), a.clone().requires_grad_(True)
        interaction_loss(fast, mask, include_self=include_self).backward()
        m = mask.float()
        pair = m[:, None, :, None] * m[:, None, None, :]
        n = m.sum(-1)
        if not include_self:
            pair = pair * (1 - torch.eye(6))
        denominator = 3 * (n.square().sum() if include_self else (n * (n - 1)).sum())
        ((pair * slow * (1 - slow @ slow.transpose(-1, -2))).sum() / denominator).backward()
        torch.testing.assert_close(fast.grad, slow.grad, atol=1e-6, rtol=1e-5)
