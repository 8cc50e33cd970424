"""What a run leaves in W&B, read back from the offline run file (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_runs import run_train
from tests.conftest import TINY
from tests.wandb_records import offline_run

# TINY says logger=none; a later logger= override replaces it.
OFFLINE = ["logger=wandb", "logger.mode=offline"]
ENV: dict[str, str | None] = {"WANDB_MODE": None, "WANDB_SILENT": "true"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("wandb") / "run"
    proc = run_train(*TINY, *OFFLINE, "trainer.max_epochs=4", f"hydra.run.dir={run_dir}", env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def test_evaluate_logs_a_run_of_job_type_evaluate_in_the_training_runs_group(finished: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import REPO, SUBPROCESS_ENV

    before = set(finished.glob("wandb/offline-run-*"))
    env = {**os.environ, **SUBPROCESS_ENV, "WANDB_SILENT": "true"}
    env.pop("WANDB_MODE")
    out = tmp_path / "e.json"
    proc = subprocess.run([sys.executable, "-m", "safr_lightning.evaluate", f"ckpt_path={finished}", f"output={out}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (new,) = set(finished.glob("wandb/offline-run-*")) - before
    trained = json.loads((finished / "results.json").read_text())["wandb"]
    run = offline_run(finished, new.name)
    assert run.job_type == "evaluate" and run.group == (trained["group"] or "") and run.exit_code == 0
    evaluation = json.loads(out.read_text())
    assert run.summary["test/srs@30"] == pytest.approx(evaluation["test"]["srs"]["30"])
    assert "e.json" in run.files


def test_summary_holds_the_best_validation_accuracy_on_an_epoch_axis(finished: Path) -> None:
    run = offline_run(finished, training=True)
    results = json.loads((finished / "results.json").read_text())
    assert run.summary["val/acc"] == {"max": pytest.approx(results["val"]["acc"])}  # the tested checkpoint's
    assert run.metrics["val/acc"] == {"step_metric": "epoch", "max": True}
    assert run.metrics["val/srs@30"]["max"] and run.metrics["val/*"]["step_metric"] == "epoch"
    assert "epoch" in run.metrics


def test_a_finished_run_exits_0_with_its_files_status_and_job_type(finished: Path) -> None:
    run = offline_run(finished, training=True)
    assert run.exit_code == 0 and run.summary["status"] == "ok" and "reason" not in run.summary
    assert {"results.json", "train.log"} <= run.files
    assert run.job_type == "train" and run.group == ""  # a single run belongs to no sweep
    assert "debug" in run.tags and "debug=tiny" in run.tags  # never read as a result


def test_a_failed_run_exits_non_zero_with_status_and_reason(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = run_train(*TINY, *OFFLINE, "vmask.tau=1e-45", f"hydra.run.dir={run_dir}", env=ENV)  # NaN at step 0
    assert proc.returncode == 2
    run = offline_run(run_dir)
    assert run.exit_code == 1 and run.summary["status"] == "failed"
    assert run.summary["reason"].startswith("non-finite loss at global step 0")
    assert "results.json" in run.files


def test_each_sweep_launch_is_its_own_group(tmp_path: Path) -> None:
    groups = []
    for launch in ("a", "b"):
        sweep = tmp_path / launch / "2025-01-01" / f"12-00-0{len(groups)}-000000-p1"
        proc = run_train("-m", *TINY, *OFFLINE, "trainer.max_epochs=1", "seed=0", "sweep_name=demo",
                         f"hydra.sweep.dir={sweep}", env=ENV)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        (job,) = [p for p in sweep.iterdir() if p.is_dir()]
        groups.append(offline_run(job).group)
    assert groups == ["demo-2025-01-01-12-00-00-000000", "demo-2025-01-01-12-00-01-000000"]


def test_a_tensorboard_logger_runs_beside_wandb(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    extra = "logger.extra=[{_target_:lightning.pytorch.loggers.TensorBoardLogger,name:tb}]"
    proc = run_train(*TINY, *OFFLINE, extra, f"hydra.run.dir={run_dir}", env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list((run_dir / "tb").glob("version_*/events.out.tfevents.*"))  # TensorBoard's own files
    assert offline_run(run_dir, training=True).summary["status"] == "ok"  # and the W&B run beside it
    bad = run_train(*TINY, "logger.extra=[{_target_:lightning.pytorch.callbacks.LearningRateMonitor}]",
                    f"hydra.run.dir={tmp_path / 'bad'}", env=ENV)  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "error: invalid config: logger.extra lightning.pytorch.callbacks.LearningRateMonitor is not a lightning Logger"
    )
