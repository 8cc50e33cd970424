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
