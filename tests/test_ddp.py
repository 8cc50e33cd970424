"""DDP gives the numbers of one process: each test text counted once, one results.json, no re-run sweep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_runs import error_lines, run_train
from tests.conftest import REPO, SUBPROCESS_ENV, TINY

# Two CPU processes over gloo; a test split of odd size, which DistributedSampler pads with a repeat.
DDP = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp", "dataset.synthetic.test_size=65",
       "trainer.limit_test_batches=null", "trainer.max_epochs=2"]  # fmt: skip


@pytest.mark.slow
def test_two_process_ddp_counts_every_test_text_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    run_dir = tmp_path / "run"
    proc = run_train(*TINY, *DDP, f"hydra.run.dir={run_dir}", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "ok" and results["test"]["n"] == 65
    assert not list(run_dir.glob("*.tmp"))
    # The same checkpoint evaluated again in one process gives the same numbers.
    out = tmp_path / "again.json"
    env = {**__import__("os").environ, **SUBPROCESS_ENV}
    again = subprocess.run([sys.executable, "-m", "safr_lightning.evaluate", f"ckpt_path={run_dir}", f"output={out}"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    single = json.loads(out.read_text())["test"]
    for key in ("n", "acc", "acc_capacity", "acc_random", "srs", "comprehensiveness", "sufficiency", "capacity"):
        assert results["test"][key] == pytest.approx(single[key], abs=1e-9), key


def test_ddp_inside_a_multirun_is_refused_in_one_line(tmp_path: Path) -> None:
    proc = run_train("-m", *TINY, *DDP, "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert proc.returncode == 1  # a sweep goes on past a failed job; each job says why, then the sweep
    assert "Lightning starts each extra process with the whole command line" in proc.stdout + proc.stderr
    assert len(list((tmp_path).iterdir())) == 1  # no second sweep folder
    jobs = sorted((tmp_path / "sweep").glob("*/results.json"))
    assert [json.loads(p.read_text())["status"] for p in jobs] == ["failed", "failed"]
    assert not error_lines(proc) or all("Traceback" not in line for line in error_lines(proc))
