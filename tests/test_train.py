from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from safr_lightning.experiment import run_training
from safr_lightning.module import SAFRModule
from tests.conftest import REPO, SUBPROCESS_ENV, TINY


def cli(*args: str, env: dict[str, str | None] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run the train CLI; ``env`` values of None remove the variable."""
    merged = {**os.environ, **SUBPROCESS_ENV, **(env or {})}
    full_env = {k: v for k, v in merged.items() if v is not None}
    return subprocess.run(
        [sys.executable, "-m", "safr_lightning.train", *args],
        cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_fast_dev_run_of_composed_config(make_cfg: Callable, tmp_path: Path) -> None:
    results = run_training(make_cfg("debug=fdr"), tmp_path)
    assert results["status"] == "ok" and 0 <= results["test"]["acc"] <= 1
    assert {"loss_ce", "loss_imp", "loss_inter", "loss"} <= set(results["test"])
    assert json.loads((tmp_path / "results.json").read_text())["status"] == "ok"


def test_training_writes_results_checkpoints_and_config(make_cfg: Callable, tmp_path: Path) -> None:
    results = run_training(make_cfg(), tmp_path)
    assert results["dataset"] == "synthetic" and results["lambda"] == {"imp": 0.1, "inter": 0.1}
    assert results["vmask"] is True and results["seed"] == 0
    assert results["checkpoint"] == "checkpoints/best.ckpt"
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file() and (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "config.yaml").is_file()
    assert results["timing"]["train_samples_per_s"] > 0 and results["timing"]["fit_s"] > 0


def test_checkpoint_restores_model_and_tokenizer(make_cfg: Callable, tmp_path: Path) -> None:
    results = run_training(make_cfg(), tmp_path)
    module = SAFRModule.load_from_checkpoint(tmp_path / results["checkpoint"], map_location="cpu").eval()
    batch = module.encode(["kabe good noma", "bad"])
    assert batch["input_ids"].shape == (2, 3) and batch["attention_mask"].tolist()[1] == [True, False, False]
    out = module.model(batch["input_ids"], batch["attention_mask"], return_trace=True)
    assert out.logits.shape == (2, 2) and out.trace["fc1"].shape[:2] == (2, 3)
    alone = module.model(**module.encode(["bad"])).logits
    torch.testing.assert_close(alone, out.logits[1:], atol=1e-5, rtol=0)


@pytest.mark.slow
def test_cli_run_on_synthetic_writes_results(tmp_path: Path) -> None:
    proc = cli(*TINY, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "ok" and results["dataset"] == "synthetic"
    assert (tmp_path / ".hydra" / "config.yaml").is_file()


@pytest.mark.slow
def test_wandb_offline_run_lands_inside_run_dir(tmp_path: Path) -> None:
    proc = cli(
        *TINY,
        "logger=wandb",
        f"hydra.run.dir={tmp_path}",
        env={"WANDB_MODE": None, "WANDB_API_KEY": None, "NETRC": str(tmp_path / "no-netrc")},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list((tmp_path / "wandb").glob("offline-run-*")), "no offline W&B run in the run dir"
    assert "wandb sync" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_without_data_or_network_one_clear_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SAFR_DATA_DIR", "HF_HUB_OFFLINE")}
    env.update(WANDB_MODE="disabled", PYTHONPATH=SUBPROCESS_ENV["PYTHONPATH"])
    env.update(HF_ENDPOINT="http://127.0.0.1:9")  # nothing listens on port 9
    proc = subprocess.run(
        [sys.executable, "-m", "safr_lightning.train", "logger=none", f"hydra.run.dir={tmp_path}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "SAFR_DATA_DIR" in errors[0]


def test_bf16_mixed_precision_trains_and_evaluates(make_cfg: Callable, tmp_path: Path) -> None:
    """The trainer=gpu precision on CPU: autocast through the model, losses, SRS and figures."""
    results = run_training(make_cfg("trainer.precision=bf16-mixed", "callbacks.figures.enabled=true"), tmp_path)
    assert results["status"] == "ok" and 0 <= results["test"]["acc"] <= 1
    assert all(v == v for v in results["test"]["srs"].values())  # no NaN
