"""The SAFR classifier: embedding → VMASK → positions → post-LN transformer blocks → masked mean → linear.

One readable file in the manner of nanoGPT. ``forward`` returns the logits and, when asked, a
*trace*: the named activations that losses, metrics, callbacks and figures read (DESIGN §3). No
hooks, no attributes set during forward.

Shapes: B texts, T tokens (the longest text in the batch), E = d_model, M heads, F = d_ff.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from safr_lightning.model.config import ModelConfig, VMaskConfig
from safr_lightning.model.vmask import VMask


@dataclass
class ModelOutput:
    """``logits`` [B, C]; ``trace`` maps DESIGN §3's names to tensors, or is None."""

    logits: torch.Tensor
    trace: dict[str, torch.Tensor] | None = None


def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """Vaswani et al.'s encoding, [length, d_model]; each position's vector has norm sqrt(d_model / 2)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(position * freq)
    pe[:, 1::2] = torch.cos(position * freq[: d_model // 2])
    return pe


class Dropout(nn.Module):
    """Inverted dropout, as ``nn.Dropout``, with the keep mask from ``torch.rand``: on CPU
    ``bernoulli_`` (which ``nn.Dropout`` uses) makes forward + backward 1.7x slower."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        scale = torch.rand_like(x).ge_(self.p).mul_(1 / (1 - self.p))  # 0 or 1/(1-p), in place
        return x * scale

    def extra_repr(self) -> str:
        return f"p={self.p}"


class SelfAttention(nn.Module):
    """Multi-head self-attention that also returns its weights A [B, M, T, K] (needed by L_inter).

    Keys and values are taken from the first ``key_len`` positions only (K; all T by default): with
    the paper's fixed padding every position after the batch's longest text is a PAD key, masked for
    every query, so projecting it and scoring queries against it is dead work. Queries are all T
    positions (PAD queries' outputs enter the paper's pooling and regularizers).
    """

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, key_len: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, T, E], mask [B, T] (True = real token) -> (output [B, T, E], weights [B, M, T, K]).

        ``key_len`` K: keys are positions ``< K``, which must hold every real token (default T).
        """
        b, t, e = x.shape
        m, d = self.n_heads, e // self.n_heads
        k_len = t if key_len is None else key_len
        if k_len >= t:
            q, k, v = self.qkv(x).view(b, t, 3, m, d).permute(2, 0, 3, 1, 4).reshape(3, b * m, t, d)
        else:
            weight, bias = self.qkv.weight, self.qkv.bias
            q = F.linear(x, weight[:e], bias[:e]).view(b, t, m, d).transpose(1, 2).reshape(b * m, t, d)
            kv = F.linear(x[:, :k_len], weight[e:], bias[e:]).view(b, k_len, 2, m, d)
            k, v = kv.permute(2, 0, 3, 1, 4).reshape(2, b * m, k_len, d)
        # Scale and key-padding mask fused into the matmul (an additive bias): at IMDB lengths every
        # elementwise pass over [B, M, T, T] costs as much as the matmul itself. A finite fill, not
        # -inf, so a (never expected) all-padding row stays finite.
        bias_k = torch.zeros(b, 1, k_len, dtype=q.dtype, device=q.device).masked_fill_(
            ~mask[:, None, :k_len], torch.finfo(q.dtype).min
        )
        scores = torch.baddbmm(bias_k.repeat_interleave(m, dim=0), q, k.transpose(1, 2), alpha=d**-0.5)
        weights = scores.softmax(-1)
        out = (weights.to(v.dtype) @ v).view(b, m, t, d).transpose(1, 2).reshape(b, t, e)
        return self.out(out), weights.view(b, m, t, k_len)


def key_length(mask: torch.Tensor) -> int:
    """K: one past the last position where any text of the batch [B, T] has a real token (at least 1).

    Every key at or after K is padding for every query. One host sync on a GPU.
    """
    real = mask.any(0)
    return max(1, int(real.nonzero().max()) + 1) if bool(real.any()) else 1


class Block(nn.Module):
    """Post-LN transformer block. Dropout on the two sublayer outputs only, as in the paper's code
    (no dropout inside the FFN or on the attention weights, so A is what L_inter regularizes)."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.attn = SelfAttention(d_model, n_heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.fc1 = nn.Linear(d_model, d_ff)
        self.fc2 = nn.Linear(d_ff, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = Dropout(dropout)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, key_len: int | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x [B, T, E], mask [B, T] -> (x [B, T, E], the block's part of the trace; attention [B, M, T, K])."""
        attn_out, attention = self.attn(x, mask, key_len)
        x = self.norm1(x + self.dropout(attn_out))
        fc1_in = x  # what FC1's neurons read: a neuron embedding is fc1_in ⊙ its weight row
        fc1 = F.relu(self.fc1(x))
        fc2 = self.fc2(fc1)
        x = self.norm2(x + self.dropout(fc2))
        return x, {"attention": attention, "attn_out": attn_out, "fc1_in": fc1_in, "fc1": fc1, "fc2": fc2,
                   "block_out": x}  # fmt: skip


class SAFRTransformer(nn.Module):
    """The 1-layer (by default) transformer classifier of the paper, with an optional VMASK layer."""

    @classmethod
    def from_config(
        cls, model: ModelConfig, vmask: VMaskConfig, *, vocab_size: int, num_classes: int, **data_and_fidelity: Any
    ) -> SAFRTransformer:
        """The model a ``model`` / ``vmask`` config describes (the typed blocks of conf/, same names).

        ``data_and_fidelity``: what the data and the ``fidelity`` keys decide, as ``__init__`` names
        them (``max_len``, ``pad_id``, ``fixed_length``, ``pad_embedding``, ``pool_over_pad``, ``init``).
        """
        return cls(
            vocab_size, num_classes, d_model=model.d_model, n_heads=model.n_heads, d_ff=model.d_ff,
            n_layers=model.n_layers, dropout=model.dropout, vmask=model.vmask, vmask_hidden=vmask.hidden,
            vmask_tau=vmask.tau, **data_and_fidelity,
        )  # fmt: skip

    def __init__(
        self,
        vocab_size: int,
        num_classes: int = 2,
        *,
        d_model: int = 256,
        n_heads: int = 8,
        d_ff: int = 1024,
        n_layers: int = 1,
        dropout: float = 0.1,
        vmask: bool = True,
        vmask_hidden: int = 1024,
        vmask_tau: float = 1.0,
        max_len: int = 512,
        pad_id: int = 0,
        fixed_length: int | None = None,
        pad_embedding: str = "zero",
        pool_over_pad: bool = False,
        init: str = "exact",
    ) -> None:
        super().__init__()
        if pad_embedding not in ("zero", "trained") or init not in ("exact", "paper"):
            raise ValueError(f"pad_embedding={pad_embedding!r} (zero | trained), init={init!r} (exact | paper)")
        if pool_over_pad and fixed_length is None:
            raise ValueError("pool_over_pad needs a fixed_length: otherwise a text's PAD count depends on its batch")
        self.d_model = d_model
        self.n_heads = n_heads
        self.pad_id = pad_id
        # The paper's code (fidelity=paper): every input padded to `fixed_length`, PAD an ordinary
        # trained token that passes VMASK, and the pooling over every position, PAD included.
        self.fixed_length = fixed_length
        self.pad_is_token = pad_embedding == "trained"
        self.pool_over_pad = pool_over_pad
        # With a fixed length, attention skips the PAD keys after the batch's longest text (they are
        # masked for every query). False runs the plain path, every key projected and scored: the
        # reference tests/model/test_paper_mode.py holds the fast one to.
        self.skip_pad_keys = True
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=None if self.pad_is_token else pad_id)
        if init == "exact":
            # Scaled by sqrt(E) in forward: std E^-1/2 gives token norms ~sqrt(E), comparable to the
            # positional encoding's sqrt(E/2), so neither drowns the other.
            nn.init.normal_(self.embedding.weight, std=d_model**-0.5)
            if not self.pad_is_token:
                with torch.no_grad():
                    self.embedding.weight[pad_id].zero_()
        # init == "paper": nn.Embedding's own N(0, 1), so after the sqrt(E) scale token norms are
        # about E and the positional encoding (norm sqrt(E/2)) barely moves them.
        self.vmask = VMask(d_model, vmask_hidden, vmask_tau) if vmask else None
        self.register_buffer("positions", sinusoidal_positions(max_len, d_model), persistent=False)
        self.dropout = Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_ff, dropout) for _ in range(n_layers))
        self.classifier = nn.Linear(d_model, num_classes)

    def _positions(self, length: int) -> torch.Tensor:
        if length <= self.positions.shape[0]:
            return self.positions[:length]
        return sinusoidal_positions(length, self.d_model).to(self.positions.device)

    def pad_inputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad [B, T] inputs to ``fixed_length`` when the model has one (the paper's fixed padding).

        A no-op otherwise. With a fixed length, PAD is part of the input (the paper's code derives
        its mask from ``ids != PAD``), so masked positions are set to PAD whatever ids they held.
        Longer inputs are refused: the tokenizer truncates at max_len, so a wider batch was not
        made for this model.
        """
        mask = attention_mask.bool()
        if self.fixed_length is None:
            return input_ids, mask
        input_ids = input_ids.masked_fill(~mask, self.pad_id)
        extra = self.fixed_length - input_ids.shape[1]
        if extra < 0:
            raise ValueError(f"inputs of {input_ids.shape[1]} tokens; this model pads to {self.fixed_length}")
        if extra == 0:
            return input_ids, mask
        return F.pad(input_ids, (0, extra), value=self.pad_id), F.pad(mask, (0, extra), value=False)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        return_trace: bool = False,
        compact: bool = False,
    ) -> ModelOutput:
        """input_ids [B, T] long, attention_mask [B, T] (1/True = real token) -> logits [B, C] (+ trace).

        With ``fixed_length`` the inputs are first padded to it, and the trace is [B, fixed_length, ...];
        attention then skips the keys after the batch's longest text (all PAD, masked: the same
        numbers). ``compact`` (what the loss needs; the LightningModule's steps): the trace's
        ``attention`` keeps only those K key columns, [B, M, T, K], instead of zero-filling it to
        [B, M, T, T].
        """
        input_ids, mask = self.pad_inputs(input_ids, attention_mask)
        key_len = key_length(mask) if self.fixed_length is not None and self.skip_pad_keys else None
        m = mask.unsqueeze(-1)
        # Where VMASK and the Baseline's pass-through apply: real tokens, or every position when PAD
        # is an ordinary token (the paper's code runs VMASK on PAD too).
        passes = torch.ones_like(mask) if self.pad_is_token else mask
        if input_ids.is_cuda:  # torch.unique would sync the host every step; FLOPs are cheap there
            e = self.embedding(input_ids) * math.sqrt(self.d_model)
            logits = self.vmask.logits(e) if self.vmask is not None else None
        else:
            # Embedding and VMASK logits are functions of the token alone: on CPU compute them
            # once per distinct token of the batch (a third of the tokens on IMDB) and gather.
            # The gathers are F.embedding, not `x[where]`: the backward of advanced indexing
            # (index_put_ with accumulate) is not deterministic on CPU; embedding's backward is.
            tokens, where = torch.unique(input_ids, return_inverse=True)
            e_tokens = self.embedding(tokens) * math.sqrt(self.d_model)
            e = F.embedding(where, e_tokens)
            logits = F.embedding(where, self.vmask.logits(e_tokens)) if self.vmask is not None else None
        if self.vmask is not None:
            h, keep, keep_prob = self.vmask(e, passes, logits=logits)
        else:  # the Baseline: every real token (and PAD, when it is a token) passes untouched
            h = e if self.pad_is_token else e * m
            keep = keep_prob = passes.to(e.dtype)
        x = self.dropout(h + self._positions(input_ids.shape[1]))
        trace: dict[str, torch.Tensor] = {}
        for i, block in enumerate(self.blocks):
            x, parts = block(x, mask, key_len)
            if return_trace and not compact and parts["attention"].shape[-1] < x.shape[1]:
                parts["attention"] = F.pad(parts["attention"], (0, x.shape[1] - parts["attention"].shape[-1]))
            if return_trace:
                trace.update({f"blocks.{i}.{name}": value for name, value in parts.items()})
                if i == 0:
                    trace.update(parts)
        if self.pool_over_pad:
            pooled = x.mean(1)
        else:
            n = mask.sum(1, keepdim=True).clamp_min(1).to(x.dtype)
            pooled = (x * m).sum(1) / n
        logits = self.classifier(pooled)
        if not return_trace:
            return ModelOutput(logits)
        trace.update(embedding=e, vmask=h, vmask_keep=keep, vmask_prob=keep_prob, attention_mask=mask)
        return ModelOutput(logits, trace)
