"""Hand-made sweep folders: what a Hydra multirun leaves behind, without running one."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def write_multirun(root: Path, params: dict[str, str], task: list[str], dataset: str = "sst2") -> None:
    """The parts of ``multirun.yaml`` the aggregator reads: sweeper, params, command line, dataset."""
    root.mkdir(parents=True, exist_ok=True)
    master = {
        "dataset": {"name": dataset},
        "hydra": {
            "sweeper": {"_target_": BASIC_SWEEPER, "max_batch_size": None, "params": params},
            "overrides": {"hydra": ["hydra.mode=MULTIRUN"], "task": task},
        },
    }
    OmegaConf.save(OmegaConf.create(master), root / "multirun.yaml")


def write_job(root: Path, name: str, overrides: list[str] | None, results: dict[str, Any] | None) -> Path:
    """A job folder: ``.hydra/overrides.yaml`` (when given) and ``results.json`` (when given)."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    if overrides is not None:
        (run_dir / ".hydra").mkdir()
        OmegaConf.save(OmegaConf.create(overrides), run_dir / ".hydra" / "overrides.yaml")
    if results is not None:
        (run_dir / "results.json").write_text(json.dumps(results))
    return run_dir


def fake_results(
    rng: random.Random,
    dataset: str,
    model: str,
    imp: float,
    inter: float,
    seed: int,
    ks: tuple[int, ...] = (10, 30),
) -> dict[str, Any]:
    """A results.json in DESIGN §8's shape with random accuracies (SRS consistent with them)."""
    acc = rng.uniform(0.6, 0.9)
    acc_capacity = {str(k): acc - rng.uniform(0.0, 0.3) for k in ks}
    acc_random = {str(k): acc - rng.uniform(0.0, 0.05) for k in ks}
    return {
        **_identity(dataset, model, imp, inter, seed),
        "status": "ok",
        "test": {
            "acc": acc,
            "ks": list(ks),
            "acc_capacity": acc_capacity,
            "acc_random": acc_random,
            "srs": {k: 100 * (acc - v) for k, v in acc_capacity.items()},
            "gap": {k: 100 * (acc_random[k] - v) for k, v in acc_capacity.items()},
        },
    }


def failed_results(dataset: str, model: str, imp: float, inter: float, seed: int, reason: str) -> dict[str, Any]:
    return {**_identity(dataset, model, imp, inter, seed), "status": "failed", "reason": reason}


def _identity(dataset: str, model: str, imp: float, inter: float, seed: int) -> dict[str, Any]:
    """Which run a results.json is (DESIGN §8's leading keys)."""
    return {
        "dataset": dataset,
        "seed": seed,
        "lambda": {"imp": imp, "inter": inter},
        "vmask": model != "baseline",
        "model": model,
    }
