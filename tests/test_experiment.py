from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safr_lightning.experiment import run_training


def _metrics(run_dir: Path) -> dict[str, Any]:
    """results.json without what may differ between identical runs: timing and paths."""
    results = json.loads((run_dir / "results.json").read_text())
    return {k: v for k, v in results.items() if k not in ("timing", "run_dir")}


def test_same_seed_and_config_give_identical_results(make_cfg: Callable, tmp_path: Path) -> None:
    for name in ("a", "b"):
        run_training(make_cfg(), tmp_path / name)
    a, b = _metrics(tmp_path / "a"), _metrics(tmp_path / "b")
    assert a["status"] == "ok" and set(a["test"]) >= {"acc", "loss", "loss_ce", "loss_imp", "loss_inter"}
    assert a == b
