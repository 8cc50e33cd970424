"""Re-running a traced model on subsets of its own tokens, without repeating per-token work.

Deletion evaluation runs the model on ~16 shortened copies of every text (DESIGN §7). In eval
mode much of a forward pass does not depend on which other tokens are present or where a token
sits, so it is computed once per original text and *gathered* for every copy:

- the embedding and the VMASK output ``h`` (per token: ``h = q(e)·e``; read from the trace);
- the first block's Q/K/V projections: ``W(h + PE_pos) + b = W·h + (W·PE_pos + b)``, i.e. a per-token
  part (computed once per text) plus a per-position part (computed once per batch width).

Only attention, its output projection, the FFN, the norms, later blocks and the classifier run per
copy. The module reads the model's public submodules (``embedding``, ``vmask``, ``positions``,
``blocks[i].attn.qkv`` ...) and never changes the model. It restates ``Block.forward``'s algebra
(post-LN, eval-mode dropout = identity), so :func:`safr_lightning.analysis.srs.evaluate_srs`
checks it against the model's own forward on the first batch and falls back to that forward if
they ever disagree (e.g. after a change in ``model/transformer.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from safr_lightning.model.transformer import Block, SAFRTransformer, SelfAttention, sinusoidal_positions


@dataclass
class TokenCache:
    """Per-token work of one traced batch, flattened over (text, position): row ``b·T + t``.

    ``h`` [B·T, E] the VMASK output, ``h_qkv`` [B·T, 3E] its first-block Q/K/V projection without
    bias, ``pe`` [T, E] the positional encoding, ``pe_qkv`` [T, 3E] its projection plus the bias.
    """

    h: torch.Tensor
    h_qkv: torch.Tensor
    pe: torch.Tensor
    pe_qkv: torch.Tensor
    width: int


def supports(model: nn.Module) -> bool:
    """Is ``model`` the architecture this module restates (a SAFRTransformer of post-LN blocks)?

    Not with ``pool_over_pad`` (the paper's pooling): there every PAD position of the re-padded copy
    changes the logits, so the per-token shortcut would run the whole padded width anyway. A fixed
    length alone is fine: PAD keys are masked and the pooling skips PAD, so the copy's logits do not
    depend on how far it is padded.
    """
    return (
        isinstance(model, SAFRTransformer)
        and not model.pool_over_pad
        and len(model.blocks) > 0
        and all(isinstance(b, Block) and isinstance(b.attn, SelfAttention) for b in model.blocks)
    )


class DeletionForward:
    """Logits of token subsets ("variants") of texts the model has already traced.

    A variant is a row of ``source`` [V, W] (old positions of its tokens, in order) taken from text
    ``rows[v]`` of the traced batch, with ``mask`` [V, W] marking its real tokens. Its logits equal
    ``model(ids[rows].gather(1, source) masked, mask).logits`` (to float rounding).
    """

    def __init__(self, model: SAFRTransformer) -> None:
        if not supports(model):
            raise TypeError(f"DeletionForward needs a SAFRTransformer, got {type(model).__name__}")
        self.model = model

    def _positions(self, width: int) -> torch.Tensor:
        table = self.model.positions
        if width <= table.shape[0]:
            return table[:width]
        return sinusoidal_positions(width, self.model.d_model).to(table.device)

    def prepare(self, trace: dict[str, torch.Tensor]) -> TokenCache:
        """Per-token work of a traced batch (the model's own eval-mode forward, ``return_trace=True``)."""
        h = trace["vmask"]
        b, t, e = h.shape
        qkv = self.model.blocks[0].attn.qkv
        pe = self._positions(t).to(h.dtype)
        h_qkv = F.linear(h.reshape(b * t, e), qkv.weight)
        return TokenCache(h.reshape(b * t, e), h_qkv, pe, qkv(pe), t)

    def __call__(self, cache: TokenCache, rows: torch.Tensor, source: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits [V, C] of the variants ``(rows [V], source [V, W], mask [V, W] bool)``."""
        model = self.model
        v, w = source.shape
        flat = (rows[:, None] * cache.width + source).view(-1)
        first = model.blocks[0]
        # Attention needs the padded [V, W] layout; everything after it is per token, so it runs
        # on the real tokens only (copies of different lengths share a batch: padding is common).
        qkv = cache.h_qkv.index_select(0, flat).view(v, w, -1).add_(cache.pe_qkv[:w])
        q, k, val = qkv.view(v, w, 3, first.attn.n_heads, -1).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, val, attn_mask=mask[:, None, None, :])
        real = mask.view(-1).nonzero().squeeze(1)  # [N] positions of real tokens in the [V·W] grid
        z = attn.transpose(1, 2).reshape(v * w, -1).index_select(0, real)
        # In-place adds: at these sizes the elementwise passes, not only the matmuls, cost time.
        x = cache.h.index_select(0, flat.index_select(0, real)).add_(cache.pe.index_select(0, real % w))
        x = first.norm1(first.attn.out(z).add_(x))
        x = first.norm2(first.fc2(F.relu_(first.fc1(x))).add_(x))
        text = real.div(w, rounding_mode="floor")
        if len(model.blocks) > 1:  # later blocks attend again: back to the padded layout
            grid = x.new_zeros(v * w, x.shape[-1]).index_copy_(0, real, x).view(v, w, -1)
            for block in model.blocks[1:]:
                grid, _ = block(grid, mask)
            x = grid.view(v * w, -1).index_select(0, real)
        counts = mask.sum(1, keepdim=True).clamp_min(1).to(x.dtype)
        pooled = x.new_zeros(v, x.shape[-1]).index_add_(0, text, x).div_(counts)
        return model.classifier(pooled)
