"""Shared fixtures: composed Hydra configs, the real-data directory, a trained tiny checkpoint."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from safr_lightning.config import register_configs
from safr_lightning.paths import CONFIG_DIR

REPO = Path(__file__).resolve().parents[1]
CONF = Path(CONFIG_DIR)
SHARED_DATA = REPO.parent / "shared" / "data"

# For CLI subprocesses: this checkout's sources (not whatever an editable install points at).
SUBPROCESS_ENV = {
    "PYTHONPATH": os.pathsep.join([str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]),
    "WANDB_MODE": "disabled",
    "HF_HUB_OFFLINE": "1",
    # Tiny models: two OpenMP threads only add synchronization (20x slower when the cores are busy).
    "OMP_NUM_THREADS": "1",
}

os.environ.setdefault("WANDB_MODE", "disabled")
torch.set_num_threads(1)  # as OMP_NUM_THREADS above, for in-process tests
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Small enough that a whole train/val/test cycle takes a second or two on 2 cores.
TINY = [
    "dataset=synthetic",
    "debug=tiny",
    "logger=none",
    "dataset.synthetic.train_size=256",
    "dataset.synthetic.val_size=64",
    "dataset.synthetic.test_size=64",
    "data.batch_size=16",
    "data.eval_batch_size=32",
    # Drawing takes longer than the tiny run itself; tests/callbacks/test_figures.py turns it on.
    "callbacks.figures.enabled=false",
]


def real_data_dir() -> Path | None:
    env = os.environ.get("SAFR_DATA_DIR")
    for candidate in (Path(env) if env else None, SHARED_DATA):
        if candidate is not None and (candidate / "sst2" / "train.parquet").is_file():
            return candidate
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if real_data_dir() is not None:
        return
    reason = "needs the real data: ../shared/data or SAFR_DATA_DIR (CI has it)"
    for item in items:
        if "real_data" in item.keywords:
            item.add_marker(pytest.mark.skipif(True, reason=reason))


@pytest.fixture
def data_dir() -> Path:
    path = real_data_dir()
    assert path is not None  # collection marks real_data tests to skip without it
    return path


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose ``conf/train.yaml`` with overrides, as the CLI would (the tiny synthetic setup by default)."""
    register_configs()

    def _make(*overrides: str, tiny: bool = True) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("train", overrides=[*(TINY if tiny else []), *overrides])
        with open_dict(cfg):
            cfg.data.cache_dir = str(tmp_path / "hf-cache")
        return cfg

    return _make


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory from one epoch of the tiny synthetic setup: checkpoints/best.ckpt, results.json."""
    from safr_lightning.experiment import run_training

    register_configs()
    run_dir = tmp_path_factory.mktemp("tiny-run")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[*TINY, "trainer.max_epochs=1"])
    with open_dict(cfg):
        cfg.data.cache_dir = str(tmp_path_factory.mktemp("hf-cache"))
    run_training(cfg, run_dir)
    return run_dir


@pytest.fixture(scope="session")
def tiny_module(tiny_run: Path):
    """The tiny run's best checkpoint, restored on CPU in eval mode."""
    from safr_lightning.module import SAFRModule

    return SAFRModule.load_from_checkpoint(tiny_run / "checkpoints" / "best.ckpt", map_location="cpu").eval()


@pytest.fixture(scope="session")
def tiny_baseline(tiny_module):
    """An untrained Baseline (no VMASK) with the tiny run's vocabulary."""
    from safr_lightning.module import SAFRModule

    hp = tiny_module.hparams
    return SAFRModule(hp.tokenizer_json, hp.num_classes, {**hp.model, "vmask": False}, hp.vmask, hp.lambdas).eval()
