"""Makefile targets whose logic is more than one command: run with a stand-in interpreter."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import REPO


def make_continue(tmp_path: Path, exits: dict[str, int], *args: str) -> tuple[int, list[str]]:
    """``make continue`` with a fake ``PY`` that records each plan and exits as ``exits`` says."""
    calls = tmp_path / "calls"
    cases = "".join(f'  *" {plan} "*) exit {code};;\n' for plan, code in exits.items())
    fake = tmp_path / "py"
    fake.write_text(f'#!/usr/bin/env bash\necho "$*" >> {calls}\ncase " $* " in\n{cases}esac\nexit 0\n')
    fake.chmod(0o755)
    stamp = tmp_path / "stamp"  # newer than pyproject.toml: no install
    stamp.touch()
    done = subprocess.run(["make", "-s", "-C", str(REPO), "continue", f"PY={fake}", f"STAMP={stamp}", *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    return done.returncode, calls.read_text().splitlines() if calls.exists() else []


def test_continue_runs_the_missing_jobs_of_every_plan_in_order(tmp_path: Path) -> None:
    rc, calls = make_continue(tmp_path, {}, "N_JOBS=1", "OVERRIDES=trainer=gpu")
    assert rc == 0
    assert calls == [f"-m safr_lightning.sweep.committed {plan} --missing --jobs 1 trainer=gpu"
                     for plan in ("imdb_exact", "sst2_table6_paper", "imdb_paper_mode")]  # fmt: skip


def test_continue_goes_on_after_a_failed_plan_and_says_so(tmp_path: Path) -> None:
    rc, calls = make_continue(tmp_path, {"imdb_exact": 1}, "PLANS=imdb_exact sst2_table6_paper")
    assert rc != 0 and len(calls) == 2 and "sst2_table6_paper" in calls[1]


def test_continue_stops_at_once_when_interrupted(tmp_path: Path) -> None:
    rc, calls = make_continue(tmp_path, {"imdb_exact": 143})  # the committed runner's exit on SIGTERM
    assert rc != 0 and len(calls) == 1
