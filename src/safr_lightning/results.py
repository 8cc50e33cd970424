"""``results.json``: the one file per run that aggregation reads (DESIGN §8). Never scraped from logs."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

RESULTS_FILE = "results.json"


def run_identity(cfg: Any) -> dict[str, Any]:
    """The fields that say which configuration a run is (the aggregation key, plus provenance)."""
    return {
        "dataset": cfg.dataset.name,
        "seed": int(cfg.seed),
        "lambda": {"imp": float(cfg["lambda"].imp), "inter": float(cfg["lambda"].inter)},
        "vmask": bool(cfg.model.vmask),
        "model": cfg.model.name,
    }


def _jsonable(value: Any) -> Any:
    """NaN/inf become null (JSON has no NaN); tensors and numpy scalars become numbers."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_results(run_dir: Path, results: dict[str, Any], name: str = RESULTS_FILE) -> Path:
    """Write ``run_dir/results.json`` (or ``name``) atomically, so a reader never sees half a file."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / name
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_jsonable(results), indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path


def read_results(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / RESULTS_FILE).read_text())
