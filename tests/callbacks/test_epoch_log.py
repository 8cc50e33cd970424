from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from safr_lightning.callbacks.epoch_log import epoch_line
from safr_lightning.experiment import run_training


def test_epoch_line_shows_the_metrics_the_run_has() -> None:
    metrics = {"train/loss_epoch": 0.45213, "val/acc": 0.775, "val/srs@30": 9.812, "train/loss_step": 1.0}
    line = epoch_line(2, 100, metrics, 61.24)
    assert line == "epoch 3/100  train/loss 0.4521  val/acc 0.7750  val/srs@30 9.81  train 61.2 s"
    assert epoch_line(0, -1, {}, None) == "epoch 1"  # max_epochs=-1: unbounded


def test_every_epoch_of_a_run_gets_one_line_in_its_log(
    make_cfg: Callable, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = make_cfg("trainer.max_epochs=2", "callbacks.early_stopping.enabled=false")
    with caplog.at_level(logging.INFO, logger="safr_lightning.callbacks.epoch_log"):
        run_training(cfg, tmp_path)
    lines = [r.getMessage() for r in caplog.records if r.name == "safr_lightning.callbacks.epoch_log"]
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    for line in lines:
        assert "train/loss " in line and "val/acc " in line and "val/srs@30 " in line and line.endswith(" s")
