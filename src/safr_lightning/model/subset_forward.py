"""Re-running a traced model on subsets of its own tokens, without repeating per-token work.

Deletion evaluation runs the model on ~16 shortened copies of every text (DESIGN §7). In eval
mode much of a forward pass does not depend on which other tokens are present or where a token
sits, so it is computed once per original text and *gathered* for every copy:

- the embedding and the VMASK output ``h`` (per token: ``h = q(e)·e``; read from the trace);
- the first block's Q/K/V projections: ``W(h + PE_pos) + b = W·h + (W·PE_pos + b)``, i.e. a per-token
  part (computed once per text) plus a per-position part (computed once per batch width).

Only attention, its output projection, the FFN, the norms, later blocks and the classifier run per
copy.

The paper's pooling (``pool_over_pad``, fidelity=paper) averages over every position of the copy
re-padded to the fixed length L, so each PAD position's output counts too: its query attends to
the copy's real keys, and its attention output goes through the output projection and the FFN.
What a PAD position brings in is the same in every copy (eval mode: PAD's VMASK output plus the
position's encoding, and its Q projection), so it is a per-position table computed once; PAD keys
are masked and never projected. Per copy that leaves attention over L queries × the copy's real
keys, and the output projection and FFN over all L positions: the FLOPs the paper's pooling
cannot do without. The module reads the model's public submodules (``embedding``, ``vmask``, ``positions``,
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
    # The paper's pooling only: a PAD token's first-block input (VMASK output + PE) at each of the L
    # positions [L, E], and its Q/K/V projection with bias [L, 3E].
    pad_x: torch.Tensor | None = None
    pad_qkv: torch.Tensor | None = None


def supports(model: nn.Module) -> bool:
    """Is ``model`` the architecture this module restates (a SAFRTransformer of post-LN blocks)?

    With a fixed length and the usual pooling, PAD keys are masked and the pooling skips PAD, so a
    copy's logits do not depend on how far it is padded; with the paper's pooling every position
    counts (see the module's docstring).
    """
    return (
        isinstance(model, SAFRTransformer)
        and (not model.pool_over_pad or model.fixed_length is not None)
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

    def tokens_per_copy(self, width: int) -> int:
        """Positions a copy of ``width`` packed tokens runs through the FFN (to size chunks by memory)."""
        return int(self.model.fixed_length or width) if self.model.pool_over_pad else width

    def prepare(self, trace: dict[str, torch.Tensor]) -> TokenCache:
        """Per-token work of a traced batch (the model's own eval-mode forward, ``return_trace=True``)."""
        h = trace["vmask"]
        b, t, e = h.shape
        qkv = self.model.blocks[0].attn.qkv
        pe = self._positions(t).to(h.dtype)
        h_qkv = F.linear(h.reshape(b * t, e), qkv.weight)
        cache = TokenCache(h.reshape(b * t, e), h_qkv, pe, qkv(pe), t)
        if self.model.pool_over_pad:
            cache.pad_x = self._pad_input().to(h.dtype)
            cache.pad_qkv = qkv(cache.pad_x)
        return cache

    def _pad_input(self) -> torch.Tensor:
        """A PAD token's first-block input at each position, [L, E]: from the model's own forward of
        one all-PAD row (eval mode: VMASK's expectation, no dropout), so it is what the model computes."""
        model = self.model
        length = int(model.fixed_length)  # type: ignore[arg-type]
        device = model.positions.device
        ids = torch.full((1, length), model.pad_id, dtype=torch.long, device=device)
        h_pad = model(ids, torch.zeros_like(ids, dtype=torch.bool), return_trace=True).trace["vmask"][0]
        return h_pad + self._positions(length).to(h_pad.dtype)

    def __call__(self, cache: TokenCache, rows: torch.Tensor, source: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits [V, C] of the variants ``(rows [V], source [V, W], mask [V, W] bool)``."""
        if self.model.pool_over_pad:
            return self._padded_copies(cache, rows, source, mask)
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

    def _padded_copies(
        self, cache: TokenCache, rows: torch.Tensor, source: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """The paper's pooling: every copy re-padded to L, each PAD position's output pooled too."""
        model = self.model
        assert cache.pad_x is not None and cache.pad_qkv is not None
        v, w = source.shape
        length, e = cache.pad_x.shape
        first = model.blocks[0]
        heads = first.attn.n_heads
        flat = (rows[:, None] * cache.width + source).view(-1)
        pad = ~mask[..., None]
        # Positions < W: the copy's own tokens, or PAD where the copy is shorter; after W: PAD alone.
        qkv = torch.where(pad, cache.pad_qkv[:w], cache.h_qkv.index_select(0, flat).view(v, w, -1) + cache.pe_qkv[:w])
        q = torch.cat([qkv[..., :e], cache.pad_qkv[w:, :e].expand(v, length - w, e)], 1)
        k, val = qkv[..., e:].view(v, w, 2, heads, -1).permute(2, 0, 3, 1, 4)  # only the first W keys: PAD after
        attn = F.scaled_dot_product_attention(
            q.view(v, length, heads, -1).transpose(1, 2), k, val, attn_mask=mask[:, None, None, :]
        )
        z = attn.transpose(1, 2).reshape(v, length, e)
        x_in = torch.where(pad, cache.pad_x[:w], cache.h.index_select(0, flat).view(v, w, e) + cache.pe[:w])
        x_in = torch.cat([x_in, cache.pad_x[w:].expand(v, length - w, e)], 1)
        x = first.norm1(first.attn.out(z).add_(x_in))
        x = first.norm2(first.fc2(F.relu_(first.fc1(x))).add_(x))
        if len(model.blocks) > 1:
            full_mask = F.pad(mask, (0, length - w))
            for block in model.blocks[1:]:
                x, _ = block(x, full_mask, w)
        return model.classifier(x.mean(1))
