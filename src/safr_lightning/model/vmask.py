"""VMASK (Chen & Ji 2020): a learned, per-token keep/drop mask after the embedding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class VMask(nn.Module):
    """Keep-logits ``p = W2 tanh(W1 e)``; train: hard Gumbel-softmax sample, eval: its expectation.

    The logits depend on the token alone (not on its position), so they are computed once per
    distinct token of the batch and gathered: a third of the work on IMDB batches, the same result.
    """

    def __init__(self, d_model: int, hidden: int = 1024, tau: float = 1.0) -> None:
        super().__init__()
        self.proj = nn.Linear(d_model, hidden)
        self.out = nn.Linear(hidden, 2)
        self.tau = tau

    def logits(self, e: torch.Tensor) -> torch.Tensor:
        """Keep/drop logits [..., 2] of embeddings e [..., E], in fp32 (sampled in fp32 under autocast)."""
        return self.out(torch.tanh(self.proj(e))).float()

    def forward(
        self, e: torch.Tensor, mask: torch.Tensor, logits: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """e [B, T, E], mask [B, T] (True = real token), optional precomputed logits [B, T, 2].

        Returns ``(h, r, q)``: masked embeddings ``h = r ⊙ e ⊙ m`` [B, T, E], the keep value ``r``
        [B, T] (0/1 with a straight-through gradient in training, ``q`` in eval) and the keep
        probability ``q = softmax(p)[..., 1]`` [B, T].
        """
        if logits is None:
            logits = self.logits(e)
        q = logits.softmax(-1)[..., 1]
        r = F.gumbel_softmax(logits, tau=self.tau, hard=True)[..., 1] if self.training else q
        r = r * mask
        h = e * r.unsqueeze(-1).to(e.dtype)
        return h, r, q
