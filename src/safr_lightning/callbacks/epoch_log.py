"""One line per epoch in the run's log (``train.log``): what a SLURM log or ``tail -f`` shows
when the progress bar is off (``trainer.enable_progress_bar=false``) or not a terminal."""

from __future__ import annotations

import logging
import math

import lightning as L
from lightning.pytorch.callbacks import Callback

from safr_lightning.callbacks.throughput import ThroughputMonitor

log = logging.getLogger(__name__)

# (metric key, shown as); keys a run does not log are left out of its line.
FIELDS = (
    ("train/loss_epoch", "train/loss"),
    ("train/acc", "train/acc"),
    ("val/loss", "val/loss"),
    ("val/acc", "val/acc"),
)


def epoch_line(epoch: int, max_epochs: int | None, metrics: dict[str, float], seconds: float | None) -> str:
    """``epoch 3/100  train/loss 0.4521  val/acc 0.7752  val/srs@30 9.81  61.2 s`` (keys that exist)."""
    head = f"epoch {epoch + 1}" + (f"/{max_epochs}" if max_epochs and max_epochs > 0 else "")
    parts = [head]
    for key, name in FIELDS:
        if key in metrics:
            parts.append(f"{name} {metrics[key]:.4f}")
    for key in sorted(k for k in metrics if k.startswith("val/srs@")):
        parts.append(f"{key} {metrics[key]:.2f}")
    if seconds is not None and math.isfinite(seconds):
        parts.append(f"train {seconds:.1f} s")
    return "  ".join(parts)


class EpochLog(Callback):
    """Logs :func:`epoch_line` at the end of every training epoch (after its validation)."""

    def __init__(self, throughput: ThroughputMonitor | None = None) -> None:
        self.throughput = throughput

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        seconds = None
        if self.throughput is not None and self.throughput.epochs:
            seconds = self.throughput.epochs[-1]["train_s"]
        log.info(epoch_line(trainer.current_epoch, trainer.max_epochs, metrics, seconds))
