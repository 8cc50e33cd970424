"""Training throughput over whole epochs, validation excluded (``perf/*`` metrics, results.json timing)."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn


class ThroughputMonitor(Callback):
    """Counts training samples and real (non-padding) tokens per epoch and the seconds they took.

    The clock runs from the epoch's start to its end minus the time spent in validation inside it,
    so it includes data loading, the optimizer and Lightning's own per-step work: what a user waits for.
    Token counts accumulate on the device and are read once per epoch (no per-step sync).
    """

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []
        self._start = 0.0
        self._val_start = 0.0
        self._val_s = 0.0
        self._samples = 0
        self._tokens: torch.Tensor | int = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()
        self._val_s = 0.0
        self._samples = 0
        self._tokens = 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._samples += int(batch["labels"].shape[0])
        self._tokens = self._tokens + batch["attention_mask"].sum()

    # Validation inside fit (trainer.training is False while it runs, so ask the trainer's function).
    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
            self._val_start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
            self._val_s += time.perf_counter() - self._val_start

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seconds = max(time.perf_counter() - self._start - self._val_s, 1e-9)
        if trainer.world_size > 1:  # the whole job's samples: every process trained on its own shard
            counts = torch.tensor([self._samples, int(self._tokens)], dtype=torch.float64, device=pl_module.device)
            counts = trainer.strategy.reduce(counts, reduce_op="sum")
            self._samples, self._tokens = int(counts[0]), int(counts[1])
        tokens = int(self._tokens)
        record = {
            "epoch": trainer.current_epoch,
            "train_s": seconds,
            "val_s": self._val_s,
            "samples": self._samples,
            "tokens": tokens,
            "samples_per_s": self._samples / seconds,
            "tokens_per_s": tokens / seconds,
        }
        self.epochs.append(record)
        pl_module.log_dict(
            {
                "perf/train_epoch_s": seconds,
                "perf/train_samples_per_s": record["samples_per_s"],
                "perf/train_tokens_per_s": record["tokens_per_s"],
            },
            on_epoch=True,
        )

    def summary(self) -> dict[str, float]:
        """Totals over the epochs this process trained (a resumed run counts its own epochs)."""
        if not self.epochs:
            return {}
        seconds = sum(e["train_s"] for e in self.epochs)
        samples = sum(e["samples"] for e in self.epochs)
        tokens = sum(e["tokens"] for e in self.epochs)
        return {
            "train_s": seconds,
            "epoch_s": seconds / len(self.epochs),
            "train_samples_per_s": samples / seconds,
            "train_tokens_per_s": tokens / seconds,
            "epochs_timed": len(self.epochs),
        }
