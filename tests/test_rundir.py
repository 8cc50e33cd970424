"""A run dir says what it holds: one writer, the config it was trained with, clean failure paths."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from safr_lightning import experiment
from safr_lightning.aggregate import aggregate
from safr_lightning.config import register_configs
from safr_lightning.errors import ConfigError, RunDirTaken, SAFRError
from safr_lightning.experiment import run_training
from safr_lightning.rundir import (
    LOCK_FILE,
    check_run_dir,
    check_writable,
    config_difference,
    fingerprint,
    hold_run_dir,
)
from safr_lightning.sweep.jobs import MISSING, OK, OTHER_LAUNCH, collect_jobs
from tests.cli_runs import error_lines, run_train, start_train
from tests.conftest import CONF, TINY
from tests.sweep_fixtures import fake_results, write_job, write_multirun


def compose_tiny(*overrides: str) -> DictConfig:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=[*TINY, *overrides])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    run_training(compose_tiny(), run_dir)
    return run_dir


def copy_of(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


# -- the config a run dir holds ---------------------------------------------------------------------


def test_fingerprint_ignores_where_things_go_and_sees_what_changes_the_numbers() -> None:
    base: dict[str, Any] = {"seed": 0, "optim": {"lr": 1e-4}, "logger": {"name": "csv"},
                            "dataset": {"name": "local", "local_dir": "/a"}, "ckpt_path": None}  # fmt: skip
    moved = {**base, "logger": {"name": "wandb"}, "dataset": {"name": "local", "local_dir": "/b"}, "ckpt_path": "last"}
    assert fingerprint(moved) == fingerprint(base) and config_difference(base, moved) is None
    changed = {**base, "optim": {"lr": 0.05}}
    assert fingerprint(changed) != fingerprint(base)
    assert config_difference(base, changed) == ("optim.lr", 1e-4, 0.05)


def test_finished_run_is_not_reused_by_another_config(finished_run: Path, tmp_path: Path) -> None:
    run_dir = copy_of(finished_run, tmp_path)
    before = (run_dir / "results.json").read_text()
    with pytest.raises(RunDirTaken, match=r"finished run trained with optim.lr=0.0001, and this run has optim.lr=0.05"):
        run_training(compose_tiny("ckpt_path=last", "optim.lr=0.05"), run_dir)
    with pytest.raises(RunDirTaken, match=r"optim.lr"):  # a fresh run into it neither
        run_training(compose_tiny("optim.lr=0.05"), run_dir)
    assert (run_dir / "results.json").read_text() == before
    # The same config is still reused, whatever the neutral keys say.
    again = run_training(compose_tiny("ckpt_path=last", "logger=csv", "trainer.enable_progress_bar=false"), run_dir)
    assert again == json.loads(before)


def test_a_run_marks_itself_running_before_it_trains(
    finished_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after a first finish, a re-run must not leave the old ``ok`` beside its new checkpoints."""
    run_dir = copy_of(finished_run, tmp_path)

    def killed(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment, "build_trainer", killed)
    with pytest.raises(SAFRError, match="interrupted by Ctrl-C during setup"):
        run_training(compose_tiny(), run_dir)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "running" and results["fingerprint"] == fingerprint_of(compose_tiny())
    assert not (run_dir / LOCK_FILE).exists()


def fingerprint_of(cfg: DictConfig) -> str:
    from omegaconf import OmegaConf

    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    return fingerprint(container)


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``directory``: its bytes and modification time."""
    files = [p for p in directory.rglob("*") if p.is_file()]
    return {str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


def test_sweep_relaunched_with_another_config_changes_nothing_and_files_nothing_under_it(tmp_path: Path) -> None:
    """The relaunch is refused job by job: exit 1 with a summary, every job dir byte for byte as it
    was (``.hydra/`` and ``train.log`` too), and the table lists the earlier launch's runs apart."""
    sweep = tmp_path / "SW"
    flags = [*TINY, "trainer.max_epochs=1", "seed=0,1", f"hydra.sweep.dir={sweep}"]
    first = run_train("-m", *flags)
    assert first.returncode == 0, first.stderr[-2000:]
    assert f"sweep: 2 jobs: 2 ok, 0 failed; tables: make table SWEEP_DIR={sweep}" in first.stdout
    jobs_before = {d.name: snapshot(d) for d in sweep.iterdir() if d.is_dir()}
    second = run_train("-m", *flags, "optim.lr=0.05", "ckpt_path=last")
    assert second.returncode == 1, second.stderr[-2000:]
    assert "finished run trained with optim.lr=0.0001" in second.stdout + second.stderr
    assert error_lines(second) == [
        f"error: sweep: 2 jobs: 0 ok, 0 failed, 2 refused; tables: make table SWEEP_DIR={sweep}"
    ]
    assert {d.name: snapshot(d) for d in sweep.iterdir() if d.is_dir()} == jobs_before
    jobs = aggregate(sweep, figures=False).jobs
    # The lr=0.05 jobs never ran (each folder holds an lr=1e-4 run): missing, to be run in new folders.
    asked = [job for job in jobs if job.num is not None]
    assert [(job.status, job.dir) for job in asked] == [(MISSING, None), (MISSING, None)]
    commands = [job.rerun_command() or "" for job in asked]
    assert all("_rerun" in c and "ckpt_path=last" not in c and "optim.lr=0.05" in c for c in commands)
    # The folders' own runs are listed as an earlier launch's, with the key that differs, never tabled.
    found = [job for job in jobs if job.num is None]
    assert [job.status for job in found] == [OTHER_LAUNCH, OTHER_LAUNCH]
    assert all("trained with (none) where this folder's launch (multirun.yaml) asks for optim.lr=0.05" in job.reason
               for job in found)  # fmt: skip
    table = (sweep / "ablation_synthetic.md").read_text()
    assert "| *no results yet* |" in table and "## Runs of an earlier launch into this folder, not tabled (2)" in table


def test_a_sweep_with_a_failed_job_runs_the_rest_and_exits_non_zero(tmp_path: Path) -> None:
    sweep = tmp_path / "SW"
    proc = run_train("-m", *TINY, "trainer.max_epochs=1", "optim.lr=1e-4,1e12", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert error_lines(proc) == [f"error: sweep: 2 jobs: 1 ok, 1 failed; tables: make table SWEEP_DIR={sweep}"]
    statuses = sorted(json.loads(p.read_text())["status"] for p in sweep.glob("*/results.json"))
    assert statuses == ["failed", "ok"]
    assert not (sweep / ".launches").exists()  # the launch's outcome files are gone once summarized


# -- one writer -------------------------------------------------------------------------------------


def test_second_run_into_a_held_dir_stops_naming_the_holder(finished_run: Path, tmp_path: Path) -> None:
    run_dir = copy_of(finished_run, tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run_dir / LOCK_FILE).write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename}))
        before = (run_dir / "results.json").read_text()
        with pytest.raises(RunDirTaken, match=rf"in use by another run \(pid {holder.pid};"):
            run_training(compose_tiny(), run_dir)
        assert (run_dir / "results.json").read_text() == before
    finally:
        holder.kill()
        holder.wait()


def test_a_dead_runs_lock_is_taken_over_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename}))
    with hold_run_dir(tmp_path):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
        with hold_run_dir(tmp_path):  # the same process again: no deadlock
            pass
        assert (tmp_path / LOCK_FILE).exists()
    assert not (tmp_path / LOCK_FILE).exists()
    assert f"(pid {dead.pid}) is gone" in caplog.text


def test_two_runs_started_into_one_dir_one_stops_at_once(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    flags = [*TINY, "trainer.max_epochs=300", "trainer.limit_train_batches=null",
             "callbacks.early_stopping.enabled=false"]  # fmt: skip
    first = start_train(*flags, f"hydra.run.dir={run_dir}")
    try:
        while not (run_dir / LOCK_FILE).exists() and first.poll() is None:
            time.sleep(0.01)
        second = run_train(*flags, "seed=1", f"hydra.run.dir={run_dir}")
        assert second.returncode == 2
        assert error_lines(second) == [
            f"error: {run_dir} is in use by another run (pid {first.pid}; {run_dir / LOCK_FILE}); wait for it, "
            f"give this run its own dir (hydra.run.dir=...), or, if that run is gone, delete {LOCK_FILE}"
        ]
    finally:
        first.kill()
        first.wait()


# -- failure paths ----------------------------------------------------------------------------------


def test_an_unwritable_run_dir_is_one_line_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"cannot write the run dir: .*a-file is a file, not a directory"):
        check_writable(blocker / "run", "the run dir")
    proc = run_train(*TINY, f"hydra.run.dir={blocker}/run")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr


def test_training_nothing_is_refused_before_it_starts() -> None:
    proc = run_train(*TINY, "trainer.limit_train_batches=0")
    assert proc.returncode == 2
    assert error_lines(proc) == [
        "error: invalid config: trainer.limit_train_batches=0; allowed: null, an integer >= 1 (batches) or a "
        "fraction in (0, 1]"
    ]


def test_zero_optimizer_steps_is_a_failure_not_ok(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lightning as L

    monkeypatch.setattr(L.Trainer, "fit", lambda self, *args, **kwargs: None)  # a fit that did nothing
    with pytest.raises(SAFRError, match=r"trained 0 optimizer steps"):
        run_training(compose_tiny(), tmp_path / "run")


def test_resume_from_a_truncated_or_foreign_checkpoint_is_one_line(finished_run: Path, tmp_path: Path) -> None:
    run_dir = copy_of(finished_run, tmp_path)
    (run_dir / "results.json").unlink()  # as if interrupted
    last = run_dir / "checkpoints" / "last.ckpt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])
    with pytest.raises(SAFRError, match=r"ckpt_path=.*last.ckpt: not a readable checkpoint"):
        run_training(compose_tiny("ckpt_path=last"), run_dir)
    torch.save({"weight": torch.zeros(2)}, last)  # a plain state_dict
    with pytest.raises(SAFRError, match=r"not a checkpoint written by safr_lightning \(no state_dict, epoch"):
        run_training(compose_tiny("ckpt_path=last"), run_dir)


# -- the aggregator ---------------------------------------------------------------------------------


def test_corrupt_multirun_or_overrides_files_are_listed_not_a_traceback(tmp_path: Path) -> None:
    import random

    root = tmp_path / "sweep"
    write_multirun(root, {"seed": "0,1"}, [])
    ok = fake_results(random.Random(0), "sst2", "safr", 0.1, 0.1, 0)
    write_job(root, "0_job", ["seed=0"], ok)
    broken = write_job(root, "1_job", None, fake_results(random.Random(1), "sst2", "safr", 0.1, 0.1, 1))
    (broken / ".hydra").mkdir()
    (broken / ".hydra" / "overrides.yaml").write_text("- seed=1\n  : [unclosed\n")
    jobs = collect_jobs(root)
    assert sorted(job.status for job in jobs if job.dir is not None) == [OK, OK]
    (root / "multirun.yaml").write_text("hydra: [unclosed\n")
    assert {job.status for job in collect_jobs(root)} == {OK}


def test_a_job_that_never_wrote_a_checkpoint_is_rerun_fresh_not_with_ckpt_path_last(tmp_path: Path) -> None:
    import random

    root = tmp_path / "sweep"
    write_multirun(root, {"seed": "0"}, ["ckpt_path=last"])
    failed = fake_results(random.Random(0), "sst2", "safr", 0.1, 0.1, 0)
    failed.update(status="failed", reason="boom", error="RuntimeError")
    write_job(root, "0_job", ["seed=0", "ckpt_path=last"], failed)
    (job,) = collect_jobs(root)
    command = job.rerun_command() or ""
    assert "ckpt_path" not in command and f"hydra.run.dir={(root / '0_job').resolve()}" in command


def test_resume_after_a_change_of_local_dir_uses_the_checkpoints_vocabulary(tmp_path: Path) -> None:
    """``dataset.local_dir`` may differ on resume; a copy with other words must not change the model's shape."""
    words = ["good", "bad", "film", "plot", "the", "a"]

    def write(directory: Path, extra: int) -> None:
        directory.mkdir()
        for split in ("train", "test"):
            rows = [f"{' '.join(words[(i + j) % 6] for j in range(5))},{i % 2}" for i in range(64)]
            rows += [f"new{k} new{k} word{k},{k % 2}" for k in range(extra)]
            (directory / f"{split}.csv").write_text("text,label\n" + "\n".join(rows) + "\n")

    write(tmp_path / "A", 0)
    write(tmp_path / "B", 40)  # 80 words the first vocabulary never saw, each twice
    register_configs()
    local = [o for o in TINY if not o.startswith("dataset")] + ["dataset=local", "trainer.max_epochs=1"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        first = compose("train", overrides=[*local, f"dataset.local_dir={tmp_path / 'A'}"])
        resumed = compose("train", overrides=[*local, f"dataset.local_dir={tmp_path / 'B'}", "ckpt_path=last",
                                              "trainer.max_epochs=2"])  # fmt: skip
    run_dir = tmp_path / "run"
    finished = run_training(first, run_dir)
    assert set(finished["data"]) == {"train", "test"}  # what it was trained on, by content
    # Finished: reused from a copy of the same files elsewhere, refused for other files.
    shutil.copytree(tmp_path / "A", tmp_path / "A-copy")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        same = compose("train", overrides=[*local, f"dataset.local_dir={tmp_path / 'A-copy'}", "ckpt_path=last"])
        other = compose("train", overrides=[*local, f"dataset.local_dir={tmp_path / 'B'}", "ckpt_path=last"])
    assert run_training(same, run_dir) == finished
    with pytest.raises(RunDirTaken, match=r"trained on other data files \(test, train differ"):
        run_training(other, run_dir)
    (run_dir / "results.json").unlink()  # as if killed before the end
    results = run_training(resumed, run_dir)
    assert results["status"] == "ok" and results["resumed_from"]["global_step"] > 0


def test_a_run_dir_must_be_its_own_and_hold_a_writable_results_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"hydra.run.dir='.' is the working directory; a run needs a dir of its own"):
        check_run_dir(Path("."))
    (tmp_path / "run" / "results.json").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"results.json exists and is not a file"):
        check_run_dir(tmp_path / "run")


def test_a_run_dir_entered_by_hydra_job_chdir_is_not_the_launch_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    monkeypatch.chdir(run_dir)  # hydra.job.chdir=true: the task starts inside its run dir
    check_run_dir(run_dir, launched_from=tmp_path)


@pytest.mark.parametrize("variable", ["RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"])
def test_only_the_first_process_of_a_distributed_job_holds_the_dir(
    variable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename}))  # rank 0's
    monkeypatch.setenv(variable, "1")
    with hold_run_dir(tmp_path):  # rank 1 writes nothing of its own there: no refusal, no lock
        pass
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_a_failure_keeps_the_runs_fingerprint_and_overrides(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = run_train(*TINY, "vmask.tau=1e-45", f"hydra.run.dir={run_dir}")  # NaN at the first step
    assert proc.returncode == 2
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "failed" and results["error"] == "NonFiniteLossError"
    assert results["fingerprint"] == fingerprint_of(compose_tiny("vmask.tau=1e-45"))
    assert "vmask.tau=1e-45" in results["overrides"]


def test_a_validation_accuracy_of_zero_is_logged_as_zero_not_nan() -> None:
    from safr_lightning.experiment import summary_line

    assert (
        summary_line({"val": {"acc": 0.0}, "test": {"acc": 0.5}}, Path("r")) == "val/acc 0.0000  test/acc 0.5000  (r)"
    )
    assert summary_line({"val": {"acc": None}}, Path("r")) == "val/acc -  test/acc -  (r)"


def test_explain_refuses_an_unwritable_out_dir_before_drawing(finished_run: Path, tmp_path: Path) -> None:
    from safr_lightning.explain import run_explain

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("explain", overrides=[f"ckpt_path={finished_run}", "text=good film", f"out_dir={blocker}/x"])
    with pytest.raises(ConfigError, match=r"cannot write the figures \(out_dir\)"):
        run_explain(cfg)


def test_the_next_run_into_a_dir_claims_it_again_in_the_same_process(tmp_path: Path) -> None:
    """A resume in the same process (a notebook, a reused worker): its claim is not skipped."""
    from safr_lightning.rundir import claim_run_dir

    cfg = compose_tiny()
    with hold_run_dir(tmp_path):
        claim_run_dir(tmp_path, cfg)
    stale = tmp_path / ".results.json.999999999.tmp"  # as a writer killed mid-write leaves it
    stale.write_text("{")
    with hold_run_dir(tmp_path):
        claim_run_dir(tmp_path, cfg)
    assert not stale.exists()
