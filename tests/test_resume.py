from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from safr_lightning.config import register_configs
from safr_lightning.errors import ConfigError
from safr_lightning.experiment import run_training
from safr_lightning.resume import check_same_config, resolve_resume, run_dir_for
from tests.cli_runs import run_train, start_train
from tests.conftest import CONF, TINY

# Long enough that a kill after the first checkpoint lands mid-run; no early stop (chance-level val).
KILLABLE = [
    *TINY,
    "trainer.max_epochs=6",
    "trainer.limit_train_batches=null",
    "callbacks.early_stopping.patience=20",
]


def _run_dir_with_checkpoint(root: Path) -> Path:
    (root / "checkpoints").mkdir(parents=True)
    (root / "checkpoints" / "last.ckpt").write_bytes(b"")
    (root / "checkpoints" / "best.ckpt").write_bytes(b"")
    return root


def test_ckpt_path_picks_the_run_dir_it_continues(tmp_path: Path) -> None:
    run = _run_dir_with_checkpoint(tmp_path / "run")
    default = str(tmp_path / "new")
    assert run_dir_for(str(run), default) == str(run)
    assert run_dir_for(str(run / "checkpoints" / "best.ckpt"), default) == str(run)
    loose = tmp_path / "elsewhere.ckpt"
    loose.write_bytes(b"")
    assert run_dir_for(str(loose), default) == default
    assert run_dir_for(str(tmp_path / "empty"), default) == default  # no checkpoint: a new dir
    assert run_dir_for("last", default) == default and run_dir_for(None, default) == default


def test_resolve_resume_finds_last_or_says_what_is_missing(tmp_path: Path) -> None:
    run = _run_dir_with_checkpoint(tmp_path / "run")
    assert resolve_resume(str(run), tmp_path / "other") == run / "checkpoints" / "last.ckpt"
    assert resolve_resume("last", run) == run / "checkpoints" / "last.ckpt"
    assert resolve_resume(None, run) is None
    with pytest.raises(ConfigError, match=r"ckpt_path='last' resumes the run in hydra.run.dir, but .*fresh"):
        resolve_resume("last", tmp_path / "fresh")
    with pytest.raises(ConfigError, match=r"ckpt_path='nope'; no checkpoint at nope"):
        resolve_resume("nope", run)


def test_resume_refuses_a_config_that_changes_the_numbers() -> None:
    trained: dict[str, Any] = {"seed": 0, "lambda": {"imp": 0.1}, "trainer": {"max_epochs": 5},
                               "dataset": {"name": "sst2", "local_dir": "/a"}}  # fmt: skip
    check_same_config(trained, {**trained, "trainer": {"max_epochs": 50}, "dataset": {"name": "sst2"}}, "r")
    with pytest.raises(ConfigError, match=r"lambda.imp=0.5, but ckpt_path='r' was trained with lambda.imp=0.1"):
        check_same_config(trained, {**trained, "lambda": {"imp": 0.5}}, "r")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run trained to the end (once for the module; tests copy it)."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    run_training(compose_tiny(), run_dir)
    return run_dir


def compose_tiny(*overrides: str) -> DictConfig:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=[*TINY, *overrides])


def test_resuming_a_finished_run_keeps_its_results(finished_run: Path, tmp_path: Path) -> None:
    run_dir = Path(shutil.copytree(finished_run, tmp_path / "run"))
    before = (run_dir / "results.json").read_text()
    stamp = (run_dir / "results.json").stat().st_mtime_ns
    again = run_training(compose_tiny("ckpt_path=last"), run_dir)
    assert again == json.loads(before) and (run_dir / "results.json").stat().st_mtime_ns == stamp


def test_resuming_with_another_lambda_is_refused(finished_run: Path, tmp_path: Path) -> None:
    run_dir = Path(shutil.copytree(finished_run, tmp_path / "run"))
    (run_dir / "results.json").unlink()  # as if interrupted
    with pytest.raises(ConfigError, match=r"lambda.imp=0.5, but ckpt_path='last' was trained with lambda.imp=0.1"):
        run_training(compose_tiny("ckpt_path=last", "lambda.imp=0.5"), run_dir)


def _metrics(results: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in results.items() if k not in ("timing", "run_dir", "resumed_from", "overrides")}


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_metrics(tmp_path: Path) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    reference = start_train(*KILLABLE, f"hydra.run.dir={whole}")  # side by side: same wall time
    victim = start_train(*KILLABLE, f"hydra.run.dir={killed}")
    last = killed / "checkpoints" / "last.ckpt"
    # Kill once last.ckpt has been replaced by a later epoch's (checkpoints are written atomically):
    # then the latest state is not the first, nor necessarily the best.
    seen = set()
    while len(seen) < 2 and victim.poll() is None:
        if last.exists():
            stat = last.stat()
            seen.add((stat.st_ino, stat.st_mtime_ns))
        time.sleep(0.005)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert reference.wait(timeout=600) == 0, reference.stderr.read() if reference.stderr else ""
    assert last.exists(), victim.stderr.read() if victim.stderr else "no checkpoint before the process ended"
    status = json.loads((killed / "results.json").read_text())["status"]
    assert status == "running", f"the run ended ({status}) before it could be killed"

    proc = run_train(*KILLABLE, f"ckpt_path={killed}")  # no hydra.run.dir: continues in `killed`
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumed = json.loads((killed / "results.json").read_text())
    uninterrupted = json.loads((whole / "results.json").read_text())
    assert resumed["resumed_from"]["checkpoint"] == "checkpoints/last.ckpt"
    assert (
        0 < resumed["resumed_from"]["epoch"] and resumed["resumed_from"]["global_step"] < uninterrupted["global_step"]
    )
    assert resumed["timing"]["epochs_timed"] < uninterrupted["timing"]["epochs_timed"]  # timing: after resume
    assert _metrics(resumed) == _metrics(uninterrupted)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "code", "cause"),
    [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")],
    ids=["sigterm", "ctrl-c"],
)
def test_a_stopped_run_says_so_in_one_line_and_continues(
    sig: signal.Signals, code: int, cause: str, tmp_path: Path
) -> None:
    """Pre-emption (SIGTERM) and Ctrl-C: not a silent exit 0, not a test of a half-trained model."""
    run_dir = tmp_path / "run"
    proc = start_train(*KILLABLE, f"hydra.run.dir={run_dir}")
    last = run_dir / "checkpoints" / "last.ckpt"
    while not last.exists() and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == code, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in stderr
    assert errors[0].startswith(f"error: interrupted by {cause} during training (epoch ")
    assert errors[0].endswith(f"; continue with ckpt_path={run_dir}")
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "interrupted" and results["error"] == "RunInterrupted"
    assert results["reason"] == errors[0].removeprefix("error: ")
    if sig == signal.SIGTERM:  # what the message says to do works
        proc2 = run_train(*KILLABLE, f"ckpt_path={run_dir}")
        assert proc2.returncode == 0, proc2.stderr[-3000:]
        assert json.loads((run_dir / "results.json").read_text())["status"] == "ok"
