"""SRS during and after training: ``val/srs@30`` at validation end, ``test/srs@k`` after test.

At the end of validation (every ``val_every_n_epochs`` epochs, not during the sanity check) the
deletion evaluation runs on a fixed, seeded subset of ``val_samples`` validation texts (never more
than the validation loop itself looks at, so ``limit_val_batches``/``fast_dev_run`` bound it too).
At the end of test it runs on the batches the test loop evaluated, with the weights the test
loop used (the restored best checkpoint in a training run), so ``test/acc`` and the SRS share
their Acc_S. Metrics go through ``LightningModule.log`` (``val/srs@30``, ``test/acc_random@30``,
``test/capacity_important``...); W&B also gets the curve over k as a ``wandb.Table``; the nested
results.json block is kept in :attr:`SRSCallback.test_result`.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.trainer.states import TrainerFn
from torch.utils.data import DataLoader, Subset

from safr_lightning.analysis.srs import SRSSettings, curve_rows, evaluate_srs, flat_metrics

log = logging.getLogger(__name__)


def _first_loader(loaders: Any) -> Any:
    return loaders[0] if isinstance(loaders, (list, tuple)) else loaders


def _first_count(counts: Any) -> float:
    if isinstance(counts, (list, tuple)):
        return float(counts[0]) if counts else 0.0
    return float(counts)


def _limit_of(trainer: L.Trainer, loader: Any) -> float:
    """``trainer.limit_test_batches`` applied to the whole (unsharded) test loader, as one process would."""
    limit = trainer.limit_test_batches
    if limit is None or (isinstance(limit, float) and limit >= 1.0):
        return math.inf
    if isinstance(limit, int):
        return float(limit)
    return float(int(limit * len(loader)))


class SRSCallback(Callback):
    """Runs :func:`~safr_lightning.analysis.srs.evaluate_srs` at validation end and after test."""

    def __init__(
        self,
        settings: SRSSettings,
        val_samples: int = 1000,
        val_every_n_epochs: int = 1,
        val_settings: SRSSettings | None = None,
    ) -> None:
        self.settings = settings
        self.val_settings = val_settings or settings
        self.val_samples = val_samples
        self.val_every_n_epochs = max(1, val_every_n_epochs)
        self.val_result: dict[str, Any] | None = None
        self.test_result: dict[str, Any] | None = None
        self.final_val_result: dict[str, Any] | None = None
        self.test_seconds: float | None = None
        self.logged_test_keys: set[str] = set()
        self.test_precision = "32-true"
        self.world_size = 1

    # -- validation -------------------------------------------------------------------------

    def _val_batches(self, trainer: L.Trainer) -> DataLoader | None:
        loader = _first_loader(trainer.val_dataloaders)
        if loader is None or not hasattr(loader, "dataset"):
            return None
        dataset = loader.dataset
        batch_size = loader.batch_size or 128
        n = min(self.val_samples, len(dataset))
        looked_at = _first_count(trainer.num_val_batches)
        if math.isfinite(looked_at):
            n = min(n, int(looked_at) * batch_size)
        if n <= 0:
            return None
        g = torch.Generator().manual_seed(self.val_settings.seed)
        indices = torch.randperm(len(dataset), generator=g)[:n]
        lengths = getattr(dataset, "lengths", None)
        if lengths is not None:  # similar lengths in a batch: little padding
            indices = indices[torch.argsort(lengths[indices], stable=True)]
        return DataLoader(
            Subset(dataset, indices.tolist()),
            batch_size=batch_size,
            shuffle=False,
            collate_fn=loader.collate_fn,
        )

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING:  # trainer.validate after fit: srs.final_val
            self.final_val_result = self._whole_split(trainer, pl_module, "validation")
            return
        if trainer.sanity_checking or self.val_samples <= 0:
            return
        if (trainer.current_epoch + 1) % self.val_every_n_epochs:
            return
        batches = self._val_batches(trainer)  # the same seeded subset in every process
        if batches is None:
            return
        # Once, by the first process; the others get its result (the same numbers on every rank).
        result = evaluate_srs(pl_module.model, batches, self.val_settings) if trainer.is_global_zero else None
        self.val_result = trainer.strategy.broadcast(result, src=0) if trainer.world_size > 1 else result
        assert self.val_result is not None
        metrics = flat_metrics(self.val_result, "val")
        # val/acc is the validation loop's, over the whole split: early stopping and the best
        # checkpoint monitor it. The SRS subset's own accuracy (srs.val_samples texts) must not replace it.
        metrics.pop("val/acc", None)
        pl_module.log_dict(metrics)

    # -- test -------------------------------------------------------------------------------

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loader = self._test_loader(trainer)
        if loader is None:
            return
        limit = _first_count(trainer.num_test_batches) if trainer.world_size == 1 else _limit_of(trainer, loader)
        batches = loader if not math.isfinite(limit) else itertools.islice(loader, int(limit))
        # Mixed precision autocasts only the loop's steps; this hook runs in the weights' own dtype.
        precision = str(trainer.precision)
        self.test_precision = "32-true" if "mixed" in precision else precision
        self.world_size = trainer.world_size
        start = time.perf_counter()
        # Under DDP the loop's loaders are padded with repeated texts to equal shards; the SRS (and
        # the accuracy results.json stores) covers each text of the split once: the first process
        # evaluates the whole split, the others receive its result.
        result = evaluate_srs(pl_module.model, batches, self.settings) if trainer.is_global_zero else None
        self.test_result = trainer.strategy.broadcast(result, src=0) if trainer.world_size > 1 else result
        self.test_seconds = time.perf_counter() - start
        metrics = flat_metrics(self.test_result, "test")
        metrics.pop("test/acc", None)  # the test loop's own test/acc is the same number
        self.logged_test_keys = set(metrics)
        pl_module.log_dict(metrics)
        self._log_curve(trainer, self.test_result)

    def _whole_split(self, trainer: L.Trainer, pl_module: L.LightningModule, split: str) -> dict[str, Any] | None:
        """The full protocol (``settings``) over the whole ``split``, by the first process."""
        loader = self._split_loader(trainer, split)
        if loader is None:
            return None
        result = evaluate_srs(pl_module.model, loader, self.settings) if trainer.is_global_zero else None
        return trainer.strategy.broadcast(result, src=0) if trainer.world_size > 1 else result

    @staticmethod
    def _split_loader(trainer: L.Trainer, split: str) -> Any:
        """The split's loader: unsharded under DDP (the datamodule's own), else the loop's."""
        datamodule = getattr(trainer, "datamodule", None)
        if trainer.world_size > 1 and datamodule is not None and hasattr(datamodule, "loader"):
            return datamodule.loader(split)
        return _first_loader(trainer.test_dataloaders if split == "test" else trainer.val_dataloaders)

    @staticmethod
    def _test_loader(trainer: L.Trainer) -> Any:
        return SRSCallback._split_loader(trainer, "test")

    @staticmethod
    def _log_curve(trainer: L.Trainer, result: dict[str, Any]) -> None:
        columns, rows = curve_rows(result)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                try:
                    logger.log_table(key="test/srs_curve", columns=columns, data=rows)
                except Exception as exc:  # W&B's failure must not cost the run its results.json
                    log.warning("W&B could not log test/srs_curve (%s); results.json has the curve", exc)

    def merge_test_results(self, test: dict[str, Any]) -> dict[str, Any]:
        """results.json's ``test`` block: the test loop's metrics (flat SRS names dropped) + the SRS block.

        ``acc`` is the SRS evaluation's Acc_S, from the same full-precision forward as every
        ``acc_capacity@k``/``acc_random@k`` (the SRS runs outside the loop's autocast), so
        ``srs = 100 · (acc − acc_capacity)`` holds for the stored numbers under any
        ``trainer.precision``. Where the test loop's own accuracy differs (bf16 autocast), it is
        kept as ``acc_test_loop``.
        """
        if self.test_result is None:
            return test
        merged = {k: v for k, v in test.items() if f"test/{k}" not in self.logged_test_keys}
        loop_acc = merged.pop("acc", None)
        block = {**merged, **self.test_result, "acc_precision": self.test_precision}
        # Under DDP the loop's accuracy counts the padding's repeated texts: not worth keeping.
        if self.world_size == 1 and loop_acc is not None and abs(loop_acc - (self.test_result["acc"] or 0.0)) > 1e-6:
            block["acc_test_loop"] = loop_acc
            log.info("test/acc %.6f (test loop) vs Acc_S %.6f (full precision, stored as acc)", loop_acc,
                     self.test_result["acc"])  # fmt: skip
        return block
