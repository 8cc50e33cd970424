"""A sweep launch's outcome: one file per job, one summary line, the exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safr_lightning.sweep import launch
from safr_lightning.sweep.launch import (
    EXIT_JOBS_FAILED,
    FAILED,
    LAUNCHES_DIR,
    OK,
    REFUSED,
    LaunchSummary,
    Outcome,
    launch_outcomes,
    record_outcome,
    summary_line,
)
from tests.sweep_fixtures import write_multirun


def test_summary_line_counts_each_outcome_and_names_the_table_command(tmp_path: Path) -> None:
    outcomes = [Outcome(0, OK), Outcome(1, FAILED, "nan"), Outcome(2, REFUSED, "another config"), Outcome(3, OK)]
    assert summary_line(outcomes, tmp_path) == (
        f"sweep: 4 jobs: 2 ok, 1 failed, 1 refused; tables: make table SWEEP_DIR={tmp_path}"
    )
    assert summary_line([Outcome(0, OK)], tmp_path).startswith("sweep: 1 job: 1 ok, 0 failed;")


def test_jobs_record_their_outcome_under_the_launch_that_the_sweep_dir_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_multirun(tmp_path, {"seed": "0,1"}, [])
    summary = LaunchSummary()
    from omegaconf import OmegaConf

    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    summary.on_multirun_start(config)
    monkeypatch.setenv(launch.LAUNCH_ENV, "stale-id-of-a-reused-worker")  # a worker of an earlier launch
    record_outcome(tmp_path, 0, OK, "", tmp_path / "0_job")
    record_outcome(tmp_path, 1, REFUSED, "holds another config's finished run", tmp_path / "1_job")
    files = sorted(p.name for p in (tmp_path / LAUNCHES_DIR / launch.LAST.id).iterdir())  # not the stale id
    assert files == ["0.json", "1.json"]
    summary.on_multirun_end(config)
    assert launch.LAST.exit_code == EXIT_JOBS_FAILED
    assert launch.LAST.summary == f"sweep: 2 jobs: 1 ok, 0 failed, 1 refused; tables: make table SWEEP_DIR={tmp_path}"
    assert not (tmp_path / LAUNCHES_DIR).exists()


def test_a_job_without_an_outcome_file_is_judged_by_its_folder(tmp_path: Path) -> None:
    write_multirun(tmp_path, {"seed": "0,1"}, [])
    outcomes = launch_outcomes(tmp_path, "no-such-launch", None)
    assert [(o.num, o.status) for o in outcomes] == [(0, launch.UNKNOWN), (1, launch.UNKNOWN)]


def test_recording_an_outcome_on_a_full_disk_never_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from safr_lightning.files import DiskFull

    def full(path: Path, text: str) -> Path:
        raise DiskFull(path, OSError(28, "No space left on device"))

    (tmp_path / LAUNCHES_DIR).mkdir()
    (tmp_path / LAUNCHES_DIR / "current").write_text("L1\n")
    monkeypatch.setattr(launch, "write_text_atomic", full)
    record_outcome(tmp_path, 0, FAILED, "boom")
    assert "could not record job 0's outcome" in caplog.text


def test_outcome_files_are_plain_json(tmp_path: Path) -> None:
    (tmp_path / LAUNCHES_DIR).mkdir()
    (tmp_path / LAUNCHES_DIR / "current").write_text("L2\n")
    record_outcome(tmp_path, 3, FAILED, "nan", tmp_path / "3_job")
    data = json.loads((tmp_path / LAUNCHES_DIR / "L2" / "3.json").read_text())
    assert data == {"num": 3, "status": "failed", "reason": "nan", "run_dir": str(tmp_path / "3_job")}
