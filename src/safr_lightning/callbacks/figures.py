"""Neuron-allocation figures at test end: files in ``<run dir>/figures/``, images in W&B."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from matplotlib.figure import Figure

from safr_lightning.analysis.allocation import group_statistics, profile_texts, sample_batches
from safr_lightning.analysis.figures import (
    curve_figure,
    group_figure,
    label_names,
    prediction_line,
    run_label,
    save_all,
    shorten,
    text_figures,
)
from safr_lightning.plots import curves_from_metrics

log = logging.getLogger(__name__)
FIGURES_DIR = "figures"


class AllocationFigures(Callback):
    """At the end of ``trainer.test``: the figures of the first ``n_texts`` test texts (token graph,
    capacity and interference across layers), important vs other tokens over the test split, and
    the deletion curve when an SRS evaluation has logged ``test/acc_<scorer>@<k>`` metrics.

    Files are always written (``<run dir>/figures/test_*.png|svg``): a run's figures should not
    depend on which logger was on. With a ``WandbLogger`` each figure is also logged as a
    ``wandb.Image`` under ``figures/<name>`` (one image per text, captioned). Only rank 0 draws.
    """

    def __init__(
        self,
        run_dir: Path,
        *,
        n_texts: int = 3,
        layer: str = "fc1",
        top_pairs: int = 15,
        group_stats: bool = True,
        max_texts: int = 2000,
        formats: Sequence[str] = ("png",),
        seed: int = 0,
    ) -> None:
        self.out_dir = Path(run_dir) / FIGURES_DIR
        self.n_texts = n_texts
        self.layer = layer
        self.top_pairs = top_pairs
        self.group_stats = group_stats
        self.max_texts = max_texts
        self.formats = list(formats)
        self.seed = seed
        self.files: list[Path] = []

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        datamodule = getattr(trainer, "datamodule", None)
        texts_by_split = getattr(datamodule, "texts", {}) or {}
        if "test" not in texts_by_split:
            log.info("figures: skipped (the datamodule keeps no test texts)")
            return
        vmask = pl_module.model.vmask is not None
        labels = label_names(pl_module)
        to_log: dict[str, tuple[list[Path], list[str]]] = {}  # W&B key -> (images, captions)

        texts = list(texts_by_split["test"]["text"][: self.n_texts])
        if texts:
            for k, profile in enumerate(profile_texts(pl_module, texts, graph_layer=self.layer), start=1):
                figures = text_figures(profile, labels, top_pairs=self.top_pairs, vmask=vmask)
                caption = f"“{shorten(profile.text, 120)}” → {prediction_line(profile, labels)}"
                for name, image in self._save(figures, prefix=f"test_text{k}_").items():
                    images, captions = to_log.setdefault(name, ([], []))
                    images.append(image)
                    captions.append(caption)
        splits = getattr(datamodule, "splits", {}) or {}
        if self.group_stats and vmask and "test" in splits:
            batch_size = int(getattr(getattr(datamodule, "data_cfg", None), "eval_batch_size", 128))
            batches = sample_batches(splits["test"], batch_size, self.max_texts, self.seed)
            stats = group_statistics(pl_module, batches, layer=self.layer)
            for name, image in self._save({"important_vs_rest": group_figure(stats, "test")}, "test_").items():
                to_log[name] = ([image], [f"{stats.n_texts} test texts"])
        curves = curves_from_metrics(trainer.callback_metrics)
        if curves is not None:
            title = f"Deletion curve: {run_label(pl_module) or 'test set'}"
            for name, image in self._save({"deletion_curve": curve_figure(curves, title)}, "test_").items():
                to_log[name] = ([image], ["test set"])
        self._log_wandb(trainer, to_log)
        log.info("figures: %d files written to %s", len(self.files), self.out_dir)

    def _save(self, figures: dict[str, Figure], prefix: str) -> dict[str, Path]:
        """Save every format; return name → the file W&B gets (the PNG: W&B shows rasters)."""
        written = save_all(figures, self.out_dir, prefix=prefix, formats=self.formats)
        for files in written.values():
            self.files += files
        return {name: next((f for f in files if f.suffix == ".png"), files[0]) for name, files in written.items()}

    @staticmethod
    def _log_wandb(trainer: L.Trainer, images: dict[str, tuple[list[Path], list[str]]]) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                for name, (paths, captions) in images.items():
                    if not all(p.suffix == ".png" for p in paths):  # wandb.Image reads rasters, not SVG/PDF
                        continue
                    # One key per image: the figures of different texts differ in size, and W&B
                    # shows a list of unequal images under one key incorrectly.
                    for i, (path, caption) in enumerate(zip(paths, captions, strict=True)):
                        key = f"figures/{name}" if len(paths) == 1 else f"figures/{name}/{i}"
                        try:
                            logger.log_image(key=key, images=[str(path)], caption=[caption])
                        except Exception as exc:  # the figure is on disk; W&B's failure is only W&B's
                            log.warning("W&B could not log %s (%s); the figure is at %s", key, exc, path)
