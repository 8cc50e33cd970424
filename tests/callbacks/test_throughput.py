from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import lightning as L

from safr_lightning.callbacks import ThroughputMonitor
from safr_lightning.experiment import build_datamodule, build_module


class SlowValidation(L.Callback):
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        time.sleep(0.5)


def test_validation_time_is_not_counted_as_training(make_cfg: Callable, tmp_path: Path) -> None:
    cfg = make_cfg("srs.enabled=false")
    dm = build_datamodule(cfg)
    dm.setup("fit")
    module = build_module(cfg, dm.tokenizer.to_str())
    monitor = ThroughputMonitor()
    trainer = L.Trainer(
        max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, callbacks=[monitor, SlowValidation()], default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(module, datamodule=dm)
    epoch = monitor.epochs[0]
    assert epoch["val_s"] >= 0.5
    assert epoch["samples"] == 2 * cfg.data.batch_size
    assert epoch["train_s"] < epoch["val_s"]  # two tiny batches take far less than the 0.5 s sleep
