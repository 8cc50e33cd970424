"""Nothing leaves the machine but W&B (when asked for), and no secret lands in a file."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
import huggingface_hub.constants
import pandas as pd
import pytest
from omegaconf import OmegaConf

from safr_lightning.config import DatasetConfig
from safr_lightning.data.sources import load_raw_splits
from safr_lightning.experiment import run_training
from tests.cli_runs import run_train
from tests.conftest import TINY


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record (and refuse) every attempt to open a connection or resolve a name."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network access in a test that forbids it")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    # As for a user who is online: the hub may be used, so only our code decides not to.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return attempts


def test_training_and_local_data_open_no_connection(
    no_network: list[Any], make_cfg: Callable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_training(make_cfg("logger=csv"), tmp_path / "run")
    rows = pd.DataFrame(
        [(f"text {i} {'good' if i % 2 else 'bad'}", i % 2) for i in range(20)], columns=["text", "label"]
    )
    for split in ("train", "validation", "test"):
        (tmp_path / "data" / "sst2").mkdir(parents=True, exist_ok=True)
        rows.to_parquet(tmp_path / "data" / "sst2" / f"{split}.parquet")
    monkeypatch.setenv("SAFR_DATA_DIR", str(tmp_path / "data"))  # a local copy: the hub is never probed
    cfg = OmegaConf.structured(DatasetConfig(name="sst2", hub_id="SetFit/sst2"))
    assert len(load_raw_splits(cfg, str(tmp_path / "cache"))["train"]) == 20
    assert no_network == []


@pytest.mark.slow
def test_api_keys_in_the_environment_are_written_nowhere(tmp_path: Path) -> None:
    secret = "sekrit-7f3a9c0d2e4b6a8c1f3e5d7b9a0c2e4f6a8b0d1c"
    proc = run_train(
        *TINY, "logger=wandb", "logger.mode=offline", f"hydra.run.dir={tmp_path}",
        env={"WANDB_API_KEY": secret, "HF_TOKEN": secret, "WANDB_MODE": None},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "results.json" for p in files) and any(p.suffix == ".wandb" for p in files)
    leaked = [str(p) for p in files if secret.encode() in p.read_bytes()]
    assert leaked == [] and secret not in proc.stdout + proc.stderr
