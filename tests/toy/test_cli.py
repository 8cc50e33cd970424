"""``python -m safr_lightning.toy`` end to end on a tiny grid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SUBPROCESS_ENV

TINY_TOY = [
    "toy.sparsities=[0,0.9]",
    "toy.decays=[1.0,0.7]",
    "toy.penalty=[0,0.3]",
    "toy.replicates=2",
    "toy.steps=150",
    "toy.batch_size=128",
    "toy.eval_samples=2000",
    "toy.bar_sparsities=[0,0.9]",
    "formats=[png]",
    "dpi=40",
]


def run_toy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "safr_lightning.toy", *args],
        cwd=REPO, env={**os.environ, **SUBPROCESS_ENV}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.slow
def test_the_cli_writes_toy_json_and_the_figures_into_the_run_dir(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = run_toy(*TINY_TOY, f"hydra.run.dir={out}")
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "toy.json").read_text())
    for key in ("config", "seed", "torch_version", "wall_seconds", "grid", "verdict", "table", "cells", "figures"):
        assert key in report
    assert report["models"] == len(report["cells"]) == 2 * 2 * 2 * 2
    cell = report["cells"][0]
    for key in ("recon", "recon_normalized", "penalty_value", "weighted_capacity", "n_dedicated", "n_represented"):
        assert key in cell
    for key in ("capacity", "norm", "polysemanticity", "represented", "dedicated", "importance"):
        assert len(cell["features"][key]) == 20
    # Every penalized cell is compared with its λ = 0 twin; the twins themselves change by 0.
    assert {c["recon_change"] for c in report["cells"] if c["penalty"] == 0} == {0.0}
    assert [v["penalty"] for v in report["verdict"]] == [0.3]
    summary = json.loads((out / "toy_summary.json").read_text())
    assert summary == {k: v for k, v in report.items() if k not in ("cells", "figures")}
    for name in ("toy_phase", "toy_features", "toy_tradeoff"):
        assert (out / f"{name}.png").stat().st_size > 0
    lines = done.stdout.strip().splitlines()
    assert lines[-2].startswith("toy: 16 models") and lines[-1] == f"written: {out / 'toy.json'}"


def test_a_bad_value_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    done = run_toy("toy.n_hidden=30", f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: invalid config: toy.n_features=20; allowed: an integer > toy.n_hidden (30)"
    assert not (tmp_path / "run" / "toy.json").exists()
