from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from lightning.pytorch.loggers import WandbLogger

from safr_lightning.callbacks import AllocationFigures
from safr_lightning.data.batches import TokenizedSplit
from safr_lightning.experiment import run_training
from safr_lightning.module import SAFRModule

TEXTS = ["good kaba naba", "bad taba Zorbly", "great"]


def tokenized(module: SAFRModule, texts: list[str]) -> TokenizedSplit:
    ids = [enc.ids for enc in module.tokenizer.encode_batch(texts, add_special_tokens=False)]
    flat = torch.tensor([i for row in ids for i in row])
    return TokenizedSplit(flat, torch.tensor([len(row) for row in ids]), torch.zeros(len(ids)))


def fake_trainer(module: SAFRModule, loggers: list[Any], metrics: dict[str, float], rank_zero: bool = True) -> Any:
    datamodule = SimpleNamespace(
        texts={"test": {"text": TEXTS}},
        splits={"test": tokenized(module, TEXTS)},
        data_cfg=SimpleNamespace(eval_batch_size=2),
    )
    return SimpleNamespace(
        is_global_zero=rank_zero, sanity_checking=False, datamodule=datamodule, callback_metrics=metrics,
        loggers=loggers,
    )  # fmt: skip


@pytest.fixture
def wandb_images(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[list[str], list[str]]]:
    """What the callback sends to W&B: key -> (image files, captions)."""
    logged: dict[str, tuple[list[str], list[str]]] = {}

    def log_image(self: WandbLogger, key: str, images: list[Any], step: Any = None, **kwargs: Any) -> None:
        logged[key] = (images, kwargs["caption"])

    monkeypatch.setattr(WandbLogger, "log_image", log_image)
    return logged


def test_figures_of_fixed_texts_go_to_files_and_wandb(
    tiny_module: SAFRModule, tmp_path: Path, wandb_images: dict
) -> None:
    callback = AllocationFigures(tmp_path, n_texts=2, max_texts=8)
    metrics = {"test/acc": 0.8, "test/acc_capacity@30": 0.6, "test/acc_random@30": 0.75}
    trainer = fake_trainer(tiny_module, [WandbLogger(mode="disabled", save_dir=str(tmp_path))], metrics)
    callback.on_test_end(trainer, tiny_module)
    names = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert names == sorted(
        [f"test_text{k}_{n}.png" for k in (1, 2) for n in ("token_graph", "layer_capacity", "layer_interference")]
        + ["test_important_vs_rest.png", "test_deletion_curve.png"]
    )
    per_text = ("token_graph", "layer_capacity", "layer_interference")
    assert set(wandb_images) == {f"figures/{n}/{i}" for n in per_text for i in (0, 1)} | {
        "figures/important_vs_rest", "figures/deletion_curve",
    }  # fmt: skip
    images, captions = wandb_images["figures/token_graph/1"]  # one image per key: texts' figures differ in size
    assert [Path(p).name for p in images] == ["test_text2_token_graph.png"]
    assert captions[0].startswith("“bad taba Zorbly” →")


def test_only_rank_zero_draws(tiny_module: SAFRModule, tmp_path: Path) -> None:
    AllocationFigures(tmp_path).on_test_end(fake_trainer(tiny_module, [], {}, rank_zero=False), tiny_module)
    assert not (tmp_path / "figures").exists()


def test_without_wandb_the_files_are_still_written(tiny_module: SAFRModule, tmp_path: Path) -> None:
    callback = AllocationFigures(tmp_path, n_texts=1, group_stats=False, formats=["svg"])
    callback.on_test_end(fake_trainer(tiny_module, [], {}), tiny_module)
    assert sorted(p.name for p in callback.files) == [
        "test_text1_layer_capacity.svg", "test_text1_layer_interference.svg", "test_text1_token_graph.svg",
    ]  # fmt: skip


def test_training_run_writes_test_figures(make_cfg: Callable, tmp_path: Path, wandb_images: dict) -> None:
    cfg = make_cfg(
        "callbacks.figures.enabled=true", "callbacks.figures.n_texts=1", "callbacks.figures.max_texts=16",
        "logger=wandb", "trainer.max_epochs=1",
    )  # fmt: skip
    run_training(cfg, tmp_path)
    figures = tmp_path / "figures"
    assert (figures / "test_text1_token_graph.png").stat().st_size > 5_000
    assert (figures / "test_important_vs_rest.png").is_file()
    assert "figures/token_graph" in wandb_images  # one text: no index
