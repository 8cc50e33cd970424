"""The schema holds the defaults; the YAML a run starts from states only what a choice changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from omegaconf import DictConfig, ListConfig, OmegaConf

from safr_lightning.config import TrainConfig
from safr_lightning.model.config import ModelConfig, VMaskConfig
from safr_lightning.paths import CONFIG_DIR

CONF = Path(CONFIG_DIR)
# Each group's default option, the Baseline (which once copied safr.yaml), and train.yaml itself.
# Presets (fidelity, lambda, rows, datasets, hardware, sweeps, debug) pin their values on purpose.
PLAIN = ["train.yaml", "model/safr.yaml", "model/baseline.yaml", "callbacks/default.yaml", "logger/wandb.yaml",
         "optim/adam.yaml"]  # fmt: skip


def leaves(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for key, value in node.items_ex(resolve=False) if isinstance(node, DictConfig) else node.items():
        if key in ("defaults", "hydra"):
            continue
        if isinstance(value, DictConfig):
            out += leaves(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", OmegaConf.to_container(value) if isinstance(value, ListConfig) else value))
    return out


@pytest.mark.parametrize("name", PLAIN)
def test_yaml_does_not_repeat_the_schema_defaults(name: str) -> None:
    text = (CONF / name).read_text()
    loaded = OmegaConf.load(CONF / name) or OmegaConf.create()
    package = "" if "@package _global_" in text or "/" not in name else name.split("/")[0] + "."
    schema = OmegaConf.structured(TrainConfig)
    repeated = []
    for key, value in leaves(loaded, package):
        default = OmegaConf.select(schema, key, default="<absent>", throw_on_missing=False)
        if OmegaConf.is_config(default):
            default = OmegaConf.to_container(default)
        if default == value:
            repeated.append(f"{key}={value!r}")
    assert repeated == [], f"{name} restates the schema's defaults"


def test_model_and_vmask_blocks_are_the_model_packages_dataclasses() -> None:
    schema = OmegaConf.structured(TrainConfig)
    assert OmegaConf.get_type(schema.model) is ModelConfig
    assert OmegaConf.get_type(schema.vmask) is VMaskConfig


def test_paths_group_places_runs_and_reads_the_data_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir

    from safr_lightning.config import register_configs

    register_configs()
    monkeypatch.setenv("SAFR_DATA_DIR", str(tmp_path / "data"))
    overrides = ["paths.output_dir=/scratch/runs", "paths.multirun_dir=/scratch/sweeps", "sweep_name=s1"]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    assert cfg.paths.data_dir == str(tmp_path / "data")  # the default reads $SAFR_DATA_DIR
    assert cfg.hydra.run.dir.startswith("/scratch/runs/sst2/")
    assert cfg.hydra.sweep.dir.startswith("/scratch/sweeps/s1/")
    monkeypatch.delenv("SAFR_DATA_DIR")
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        assert compose("train").paths.data_dir is None  # no data root: the Hugging Face Hub
