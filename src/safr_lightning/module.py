"""``SAFRModule``: the LightningModule that trains and evaluates a :class:`SAFRTransformer`.

It owns the loss (every term logged on its own), accuracy per stage (torchmetrics, so it syncs
across devices), the optimizer, and the tokenizer: the vocabulary is saved in the checkpoint's
hyperparameters, so ``SAFRModule.load_from_checkpoint(path)`` restores a model that can
``encode`` new text.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lightning as L
import torch
from tokenizers import Tokenizer
from torchmetrics.classification import MulticlassAccuracy

from safr_lightning.config import FidelityConfig
from safr_lightning.data.tokenizer import PAD_ID, tokenizer_from_json
from safr_lightning.errors import NonFiniteLossError, SAFRError
from safr_lightning.losses import LossWeights, safr_loss
from safr_lightning.model.config import ModelConfig, VMaskConfig, typed
from safr_lightning.model.transformer import ModelOutput, SAFRTransformer

# DESIGN's exact mode: the fidelity of every checkpoint written before the key existed.
EXACT_FIDELITY: dict[str, Any] = dataclasses.asdict(FidelityConfig())

Batch = dict[str, torch.Tensor]


class SAFRModule(L.LightningModule):
    """Model + loss + metrics.

    Args:
        tokenizer_json: the serialized ``tokenizers`` vocabulary (``Tokenizer.to_str()``).
        num_classes: number of labels.
        model: ``model`` config (d_model, n_heads, d_ff, n_layers, dropout, vmask, compile).
        vmask: ``vmask`` config (hidden, tau, beta).
        lambdas: ``{"imp": λ_imp, "inter": λ_inter}``.
        loss: ``{"inter_include_self": bool}``.
        optim: ``{"lr": ..., "weight_decay": ...}``.
        max_len: the truncation length (sizes the positional table; the padded length with
            ``fidelity.fixed_padding``).
        fidelity: the ``fidelity`` config (exact mode when None: checkpoints from before it existed).
        seed: reseeds the global RNGs at every epoch start (see ``on_train_epoch_start``).
        nan_check_every: check the loss for NaN/inf every this many steps.
        run_config: the whole resolved run config, kept for provenance (optional).
    """

    def __init__(
        self,
        tokenizer_json: str,
        num_classes: int,
        model: Mapping[str, Any] | ModelConfig,
        vmask: Mapping[str, Any] | VMaskConfig,
        lambdas: dict[str, float],
        loss: dict[str, Any] | None = None,
        optim: dict[str, Any] | None = None,
        max_len: int = 512,
        seed: int = 0,
        nan_check_every: int = 1,
        run_config: dict[str, Any] | None = None,
        fidelity: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        # Not sent to loggers: the tokenizer JSON is megabytes; loggers get the run config instead.
        self.save_hyperparameters(logger=False)
        self.tokenizer: Tokenizer = tokenizer_from_json(tokenizer_json)
        self.fidelity = {**EXACT_FIDELITY, **(fidelity or {})}
        fixed_padding = bool(self.fidelity["fixed_padding"])
        # The padded length of every input (the paper's fixed padding), or None: the batch's longest.
        self.pad_to: int | None = max_len if fixed_padding else None
        self.model_config = typed(ModelConfig, model)
        self.vmask_config = typed(VMaskConfig, vmask)
        self.model = SAFRTransformer.from_config(
            self.model_config,
            self.vmask_config,
            vocab_size=self.tokenizer.get_vocab_size(),
            num_classes=num_classes,
            max_len=max(max_len, 512),
            pad_id=PAD_ID,
            fixed_length=self.pad_to,
            pad_embedding=str(self.fidelity["pad_embedding"]),
            pool_over_pad=bool(self.fidelity["pool_over_pad"]),
            init=str(self.fidelity["init"]),
        )
        loss = loss or {}
        self.weights = LossWeights(
            imp=float(lambdas["imp"]),
            inter=float(lambdas["inter"]),
            beta=float(self.vmask_config.beta),
            inter_include_self=bool(loss.get("inter_include_self", False)),
            regularizers=str(self.fidelity["regularizers"]),
        )
        self.optim_cfg = {"lr": 1e-4, "weight_decay": 0.0, **(optim or {})}
        self.seed = seed
        self.nan_check_every = max(1, nan_check_every)
        self.compile_model = bool(self.model_config.compile)
        self._bad_step: torch.Tensor | None = None  # first step with a non-finite loss (device-side)
        self._bad_values: torch.Tensor | None = None
        self._term_names: list[str] = []
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self._epoch_sums: torch.Tensor | None = None  # Σ batch_size · term over the epoch's batches
        self._epoch_count = 0
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    # -- public API -------------------------------------------------------------------------

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, return_trace: bool = False) -> ModelOutput:
        return self.model(input_ids, attention_mask, return_trace=return_trace)

    def encode(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenize ``texts`` as in training: ``input_ids`` [B, T] and ``attention_mask`` [B, T] (bool),
        padded to the longest text (to max_len with ``fidelity.fixed_padding``), on this module's device."""
        if isinstance(texts, str):
            texts = [texts]
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        empty = [i for i, enc in enumerate(encodings) if not enc.ids]
        if empty:
            raise SAFRError(f"text {empty[0]} has no tokens (empty or whitespace-only)")
        width = self.pad_to or max(len(enc.ids) for enc in encodings)
        ids = torch.full((len(encodings), width), PAD_ID, dtype=torch.long)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = torch.tensor(enc.ids, dtype=torch.long)
        return {"input_ids": ids.to(self.device), "attention_mask": (ids != PAD_ID).to(self.device)}

    # -- training ---------------------------------------------------------------------------

    def configure_model(self) -> None:
        if self.compile_model and not getattr(self, "_compiled", False):
            # In place, so state-dict keys (and checkpoints) stay those of the plain model.
            self.model.compile(dynamic=True)
            self._compiled = True

    def configure_optimizers(self) -> Any:
        # The fused kernel updates each parameter in one pass: on 2 CPU cores the default
        # per-tensor loop costs about as much as the model's own backward at batch 32.
        cfg = self.optim_cfg
        kind = torch.optim.AdamW if cfg.get("name", "adam") == "adamw" else torch.optim.Adam
        optimizer = kind(self.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"], fused=True)
        if cfg.get("scheduler", "none") == "none":
            return optimizer
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        factor = warmup_decay(int(cfg.get("warmup_steps", 0)), total, cfg["scheduler"])
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_train_epoch_start(self) -> None:
        # Dropout and Gumbel noise of epoch e depend on (seed, e) alone, so a run resumed from an
        # end-of-epoch checkpoint replays exactly what the uninterrupted run would have done.
        L.seed_everything((self.seed * 1_000_003 + self.current_epoch) % 2**32, workers=True, verbose=False)
        self._epoch_sums = None
        self._epoch_count = 0
        self.train_acc.reset()

    def _shared_step(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        out = self.model(batch["input_ids"], batch["attention_mask"], return_trace=True, compact=True)
        terms = safr_loss(out.logits, batch["labels"], out.trace, self.weights)
        return terms, out.logits

    def _watch_finite(self, terms: dict[str, torch.Tensor]) -> None:
        """Stop at a NaN/inf loss, naming the first step it appeared at and the terms' values.

        The first bad step is latched on the device and read only every ``nan_check_every`` steps
        (and at epoch end), so on a GPU the check costs no host sync per step; on CPU (every = 1)
        it stops at once.
        """
        loss = terms["loss"].detach()
        values = torch.stack([v.detach().float() for v in terms.values()])
        if self._bad_step is None:
            self._bad_step = torch.full((), -1, dtype=torch.long, device=loss.device)
            self._bad_values = torch.zeros_like(values)
        self._term_names = list(terms)
        newly = ~torch.isfinite(loss) & (self._bad_step < 0)
        self._bad_step = torch.where(newly, self.global_step, self._bad_step)
        self._bad_values = torch.where(newly, values, self._bad_values)
        if (self.global_step + 1) % self.nan_check_every == 0:
            self._raise_if_non_finite()

    def _raise_if_non_finite(self) -> None:
        if self._bad_step is None or self._bad_values is None:
            return
        step = int(self._bad_step)
        if step >= 0:
            raise NonFiniteLossError(step, dict(zip(self._term_names, self._bad_values.tolist(), strict=True)))

    def on_train_epoch_end(self) -> None:
        self._raise_if_non_finite()

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        terms, logits = self._shared_step(batch)
        self._watch_finite(terms)
        batch_size = len(batch["labels"])
        # Lightning's self.log costs ~1 ms a call on 2 CPU cores, 10-15 % of an SST-2 step: the
        # per-step values go to it only on the steps the loggers write (log_every_n_steps), and the
        # epoch means (weighted by batch size, as Lightning's own on_epoch reduction) are summed here
        # on the device and logged once, at the epoch's last batch.
        values = torch.stack([v.detach().float() for v in terms.values()]) * batch_size
        self._epoch_sums = values if self._epoch_sums is None else self._epoch_sums + values
        self._epoch_count += batch_size
        self.train_acc.update(logits, batch["labels"])
        if (self.global_step + 1) % max(1, self.trainer.log_every_n_steps) == 0:
            self.log_dict({f"train/{k}_step": v for k, v in terms.items()}, on_step=True, on_epoch=False,
                          batch_size=batch_size)  # fmt: skip
        if batch_idx + 1 >= self.trainer.num_training_batches:
            means = self._epoch_sums / self._epoch_count
            epoch = {f"train/{k}_epoch": means[i] for i, k in enumerate(terms)}
            self.log_dict({**epoch, "train/acc": self.train_acc.compute()}, on_step=False, on_epoch=True, batch_size=1)
        return terms["loss"]

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        terms, logits = self._shared_step(batch)
        batch_size = len(batch["labels"])
        # sync_dist: under DDP the mean over every process's batches (a no-op in one process).
        self.log_dict({f"val/{k}": v for k, v in terms.items()}, batch_size=batch_size, sync_dist=True)
        self.val_acc(logits, batch["labels"])
        self.log("val/acc", self.val_acc, prog_bar=True, batch_size=batch_size)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        terms, logits = self._shared_step(batch)
        batch_size = len(batch["labels"])
        self.log_dict({f"test/{k}": v for k, v in terms.items()}, batch_size=batch_size, sync_dist=True)
        self.test_acc(logits, batch["labels"])
        self.log("test/acc", self.test_acc, batch_size=batch_size)


def warmup_decay(warmup: int, total: int, shape: str) -> Callable[[int], float]:
    """The learning-rate factor at step ``s``: linear warm-up to 1 over ``warmup`` steps, then ``shape``
    (cosine or linear) decay to 0 at step ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min((step - warmup) / max(total - warmup, 1), 1.0)
        return 0.5 * (1 + math.cos(math.pi * progress)) if shape == "cosine" else 1.0 - progress

    return factor
