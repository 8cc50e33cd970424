from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import pytest
import torch

from safr_lightning.errors import NonFiniteLossError
from safr_lightning.experiment import build_datamodule, build_module, run_training


def test_nan_loss_stops_training_naming_step_and_term(make_cfg: Callable, tmp_path: Path) -> None:
    with pytest.raises(NonFiniteLossError, match=r"global step 1 in .*loss_ce.*loss"):
        run_training(make_cfg("optim.lr=1e10"), tmp_path)  # the first update blows the weights up


def test_nan_check_every_n_steps_still_reports_the_first_bad_step(make_cfg: Callable, tmp_path: Path) -> None:
    with pytest.raises(NonFiniteLossError, match="global step 1") as info:
        run_training(make_cfg("optim.lr=1e10", "trainer.nan_check_every=3"), tmp_path)  # read at step 2
    assert info.value.step == 1
    assert not torch.isfinite(torch.tensor(info.value.terms["loss"]))


class RecordSteps(L.Callback):
    """Each batch's loss and size, and what the module had logged at that step."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, float, int]] = []  # (epoch, loss, batch size)
        self.step_logged: list[tuple[int, float, float]] = []  # (global step, logged train/loss_step, loss)
        self.epoch_means: list[tuple[float, float]] = []  # (train/loss_epoch, train/acc)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        loss = float(outputs["loss"])
        self.batches.append((trainer.current_epoch, loss, len(batch["labels"])))
        if "train/loss_step" in trainer.callback_metrics:
            self.step_logged.append((trainer.global_step, float(trainer.callback_metrics["train/loss_step"]), loss))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = trainer.callback_metrics
        self.epoch_means.append((float(metrics["train/loss_epoch"]), float(metrics["train/acc"])))


def test_train_epoch_means_are_batch_weighted_and_reset_each_epoch(make_cfg: Callable, tmp_path: Path) -> None:
    # 250 texts in batches of 16: the last batch has 10, so an unweighted mean of batch means would differ.
    cfg = make_cfg("srs.enabled=false", "dataset.synthetic.train_size=250")
    dm = build_datamodule(cfg)
    dm.setup("fit")
    module = build_module(cfg, dm.tokenizer.to_str())
    record = RecordSteps()
    trainer = L.Trainer(
        max_epochs=2, limit_val_batches=1, logger=False, enable_checkpointing=False, log_every_n_steps=3,
        enable_progress_bar=False, callbacks=[record], default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(module, datamodule=dm)
    for epoch, (logged, acc) in enumerate(record.epoch_means):
        rows = [(loss, size) for e, loss, size in record.batches if e == epoch]
        assert sorted({size for _, size in rows}) == [10, 16]
        expected = sum(loss * size for loss, size in rows) / sum(size for _, size in rows)
        assert logged == pytest.approx(expected, rel=1e-5)
        assert 0.0 <= acc <= 1.0
    assert len(record.epoch_means) == 2 and record.epoch_means[0][0] != record.epoch_means[1][0]
    # The per-step value reaches Lightning on the steps its loggers write (every 3rd), and is that step's loss.
    fresh = [(step, logged) for step, logged, loss in record.step_logged if logged == pytest.approx(loss, rel=1e-6)]
    assert [step for step, _ in fresh] == list(range(3, len(record.batches) + 1, 3))
