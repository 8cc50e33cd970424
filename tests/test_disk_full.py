"""A full disk at any write of a run: one line naming the file, a failed record, no half file left."""

from __future__ import annotations

import errno
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from safr_lightning import files, train
from safr_lightning.cli import FULL_ERROR_ENV, run_cli
from tests.conftest import REPO, SUBPROCESS_ENV, TINY

ARGS = [*TINY, "trainer.max_epochs=1"]


def train_in_process(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.delenv(FULL_ERROR_ENV, raising=False)
    monkeypatch.setattr(sys, "argv", ["train", *ARGS, f"hydra.run.dir={run_dir}"])
    try:
        run_cli(train._hydra_main)
    except SystemExit as stop:
        return int(stop.code or 0)
    return 0


def assert_whole(run_dir: Path) -> None:
    """Every file under its final name is complete; no temporary file is left."""
    assert [p.name for p in run_dir.rglob(f"*{files.TMP_MARK}")] == []
    for path in run_dir.rglob("*.json"):
        json.loads(path.read_text())
    for path in run_dir.rglob("*.ckpt"):
        torch.load(path, map_location="cpu", weights_only=False)


@pytest.mark.slow
def test_a_full_disk_at_each_write_of_a_run_is_one_line_and_a_failed_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = files._fsync_file
    written: list[Path] = []

    def counting(path: Path) -> None:
        written.append(path)
        real(path)

    monkeypatch.setattr(files, "_fsync_file", counting)
    assert train_in_process(tmp_path / "count", monkeypatch) == 0
    targets = [p.parent / p.name.removeprefix(".").rsplit(".", 2)[0] for p in written]  # .x.json.<pid>.tmp -> x.json
    names = [t.name for t in targets]
    assert {"config.yaml", "results.json", "best.ckpt", "last.ckpt"} <= set(names), names
    capsys.readouterr()

    for n, target in enumerate(targets, start=1):
        monkeypatch.setattr(files, "_fsync_file", full_at(n, real))
        run_dir = tmp_path / f"full-at-{n}"
        code = train_in_process(run_dir, monkeypatch)
        err = capsys.readouterr().err
        where = run_dir / target.relative_to(tmp_path / "count")
        assert code == 2, (n, target, err[-2000:])
        lines = [line for line in err.splitlines() if line.startswith("error")]
        assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
        assert lines[0].startswith(f"error: cannot write {where}: No space left on device ("), lines[0]
        assert " free on " in lines[0]
        results = json.loads((run_dir / "results.json").read_text())
        assert results["status"] == "failed" and results["reason"] == lines[0].removeprefix("error: ")
        assert_whole(run_dir)


def full_at(n: int, real: Callable[[Path], None]) -> Callable[[Path], None]:
    """``files._fsync_file`` that finds the disk full at its ``n``-th call."""
    calls = 0

    def fsync(path: Path) -> None:
        nonlocal calls
        calls += 1
        if calls == n:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path)

    return fsync


def _limit_file_size(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.slow
def test_a_checkpoint_beyond_the_file_size_limit_is_one_line_and_no_truncated_file(tmp_path: Path) -> None:
    """A real refusal from the kernel (RLIMIT_FSIZE: EFBIG), end to end through the CLI."""
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "safr_lightning.train", *ARGS, f"hydra.run.dir={run_dir}"],
        cwd=REPO,
        env={**os.environ, **SUBPROCESS_ENV},
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: _limit_file_size(100_000),  # results.json fits, a checkpoint (~240 kB) does not
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert lines == [line for line in lines if line.startswith(f"error: cannot write {run_dir}/checkpoints/")]
    assert len(lines) == 1 and "File too large" in lines[0] and "Traceback" not in proc.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "failed" and "File too large" in results["reason"]
    assert list((run_dir / "checkpoints").glob("*.ckpt")) == []
    assert_whole(run_dir)
