from __future__ import annotations

import os
import random
import shlex
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser

from safr_lightning.sweep.jobs import (
    FAILED,
    MISSING,
    OK,
    OTHER_LAUNCH,
    collect_jobs,
    expected_jobs,
    newest_sweep,
)
from tests.sweep_fixtures import failed_results, fake_results, write_job, write_multirun

PARAMS = {"dataset": "sst2,imdb", "+row": "baseline,imp0.1_inter0.1"}


def job_overrides(dataset: str, row: str, *extra: str) -> list[str]:
    return [f"dataset={dataset}", f"+row={row}", "seed=0", *extra]


def test_expected_jobs_expand_like_hydra_and_the_command_line_wins(tmp_path: Path) -> None:
    write_multirun(tmp_path, {**PARAMS, "seed": "0,1,2"}, ["seed=0", "trainer.max_epochs=1"])
    jobs = expected_jobs(tmp_path)
    assert jobs is not None and [j.num for j in jobs] == [0, 1, 2, 3]
    assert [j.overrides for j in jobs] == [
        ("dataset=sst2", "+row=baseline", "seed=0", "trainer.max_epochs=1"),
        ("dataset=sst2", "+row=imp0.1_inter0.1", "seed=0", "trainer.max_epochs=1"),
        ("dataset=imdb", "+row=baseline", "seed=0", "trainer.max_epochs=1"),
        ("dataset=imdb", "+row=imp0.1_inter0.1", "seed=0", "trainer.max_epochs=1"),
    ]
    assert [j.dataset for j in jobs] == ["sst2", "sst2", "imdb", "imdb"]


def test_dataset_of_a_job_without_a_dataset_override_is_the_sweeps_default(tmp_path: Path) -> None:
    write_multirun(tmp_path, {"seed": "0,1"}, [], dataset="synthetic")
    jobs = expected_jobs(tmp_path)
    assert jobs is not None and {j.dataset for j in jobs} == {"synthetic"}


def test_other_sweepers_leave_the_expected_jobs_unknown(tmp_path: Path) -> None:
    write_multirun(tmp_path, PARAMS, [])
    text = (tmp_path / "multirun.yaml").read_text().replace("basic_sweeper.BasicSweeper", "optuna.Sweeper")
    (tmp_path / "multirun.yaml").write_text(text)
    assert expected_jobs(tmp_path) is None
    assert expected_jobs(tmp_path / "nothing-here") is None


def test_each_job_is_ok_failed_or_missing(tmp_path: Path) -> None:
    rng = random.Random(0)
    write_multirun(tmp_path, {**PARAMS, "seed": "0"}, [])
    write_job(tmp_path, "0_ok", job_overrides("sst2", "baseline"), fake_results(rng, "sst2", "baseline", 0, 0, 0))
    write_job(
        tmp_path,
        "1_bad",
        job_overrides("sst2", "imp0.1_inter0.1"),
        failed_results("sst2", "safr", 0.1, 0.1, 0, "nan"),
    )
    write_job(tmp_path, "2_killed", job_overrides("imdb", "baseline"), None)  # died before results.json
    # job 3 (imdb, imp0.1_inter0.1) never started: no folder at all
    jobs = {j.num: j for j in collect_jobs(tmp_path)}
    assert [jobs[n].status for n in range(4)] == [OK, FAILED, MISSING, MISSING]
    assert jobs[1].reason == "nan"
    assert "no results.json" in jobs[2].reason and jobs[2].dir == tmp_path / "2_killed"
    assert jobs[3].reason == "never started" and jobs[3].dir is None and jobs[3].dataset == "imdb"
    assert jobs[3].label(tmp_path) == "job 3" and jobs[2].label(tmp_path) == "2_killed"


def test_results_without_a_multirun_are_collected_too(tmp_path: Path) -> None:
    write_job(tmp_path, "a", None, fake_results(random.Random(0), "sst2", "safr", 1, 1, 4))
    (job,) = collect_jobs(tmp_path)
    assert job.num is None and job.status == OK and job.dataset == "sst2"


def test_an_override_that_differs_between_jobs_makes_its_own_configuration(tmp_path: Path) -> None:
    rng = random.Random(0)
    write_multirun(tmp_path, {"optim.lr": "0.001,0.0001", "seed": "0"}, ["dataset=sst2", "logger=csv"])
    for i, lr in enumerate(("0.001", "0.0001")):
        overrides = [f"optim.lr={lr}", "seed=0", "dataset=sst2", "logger=csv"]
        write_job(tmp_path, f"{i}_lr", overrides, fake_results(rng, "sst2", "safr", 0.1, 0.1, 0))
    variants = sorted(j.variant for j in collect_jobs(tmp_path))
    assert variants == [("optim.lr=0.0001",), ("optim.lr=0.001",)]  # logger=csv is common: no variant


def test_newest_sweep_is_the_last_multirun_written(tmp_path: Path) -> None:
    old, new = tmp_path / "paper" / "a", tmp_path / "grid" / "b"
    write_multirun(old, PARAMS, [])
    write_multirun(new, PARAMS, [])
    os.utime(old / "multirun.yaml", (1e9, 1e9))
    assert newest_sweep(tmp_path) == new
    assert newest_sweep(tmp_path / "absent") is None


def test_results_that_do_not_say_which_run_they_are_count_as_failed(tmp_path: Path) -> None:
    results = fake_results(random.Random(0), "sst2", "safr", 1, 1, 4)
    del results["lambda"]
    write_job(tmp_path, "a", None, results)
    (job,) = collect_jobs(tmp_path)
    assert job.status == FAILED and "identity" in job.reason


def test_a_job_rerun_with_neutral_overrides_still_fills_its_cell(tmp_path: Path) -> None:
    write_multirun(tmp_path, {"+row": "baseline,imp0.1_inter0.1", "seed": "0"}, ["dataset=sst2"])
    rng = random.Random(0)
    write_job(tmp_path, "0_a", job_overrides("sst2", "baseline"), fake_results(rng, "sst2", "baseline", 0, 0, 0))
    rerun = job_overrides("sst2", "imp0.1_inter0.1", "trainer.enable_progress_bar=false", f"ckpt_path={tmp_path}/x")
    write_job(tmp_path, "1_b", rerun, fake_results(rng, "sst2", "safr", 0.1, 0.1, 0))
    jobs = sorted(collect_jobs(tmp_path), key=lambda j: j.num)
    assert [(j.num, j.status, j.variant) for j in jobs] == [(0, OK, ()), (1, OK, ())]


def test_an_override_that_changes_results_is_not_neutral(tmp_path: Path) -> None:
    write_multirun(tmp_path, {"seed": "0"}, ["dataset=sst2", "+row=baseline"])
    write_job(
        tmp_path,
        "0_other",
        job_overrides("sst2", "baseline", "trainer.max_epochs=1"),
        fake_results(random.Random(0), "sst2", "baseline", 0, 0, 0),
    )
    jobs = sorted(collect_jobs(tmp_path), key=lambda j: -1 if j.num is None else j.num)
    # The folder's run is not the job multirun.yaml asks for: an earlier launch's, never tabled as it.
    assert [(j.num, j.status) for j in jobs] == [(None, OTHER_LAUNCH), (0, MISSING)]
    expected = "trained with trainer.max_epochs=1 where this folder's launch (multirun.yaml) asks for (none)"
    assert expected in jobs[0].reason


def test_missing_jobs_come_with_the_command_that_reruns_them_into_the_sweep(tmp_path: Path) -> None:
    root = tmp_path / "a sweep"  # a space: the command must quote for the shell and for Hydra
    write_multirun(root, {**PARAMS, "seed": "0"}, [])
    failed = failed_results("sst2", "safr", 0.1, 0.1, 0, "nan")
    failed["error"] = "NonFiniteLossError"
    write_job(root, "1_bad", job_overrides("sst2", "imp0.1_inter0.1"), failed)
    killed = write_job(root, "2_killed", job_overrides("imdb", "baseline"), None)
    (killed / "checkpoints").mkdir()
    (killed / "checkpoints" / "last.ckpt").write_bytes(b"")
    jobs = {j.num: j for j in collect_jobs(root)}
    assert jobs[1].rerun_command() is None  # a NaN loss: the same seed would diverge the same way
    assert shlex.split(jobs[2].rerun_command() or "") == [
        "python", "-m", "safr_lightning.train", "dataset=imdb", "+row=baseline", "seed=0",
        f"ckpt_path='{killed.resolve()}'",
    ]  # fmt: skip
    never = shlex.split(jobs[0].rerun_command() or "")
    assert never[-1] == f"hydra.run.dir='{(root / '0_rerun').resolve()}'"
    assert OverridesParser.create().parse_override(never[-1]).value() == str((root / "0_rerun").resolve())

    # What that command leaves (its task overrides, then results) fills job 0's cell.
    write_job(root, "0_rerun", never[3:-1], fake_results(random.Random(0), "sst2", "baseline", 0, 0, 0))
    rerun = {j.num: j for j in collect_jobs(root)}[0]
    assert rerun.status == OK and rerun.dir == root / "0_rerun"


def test_a_job_that_crashed_is_rerun_and_overrides_survive_the_shell(tmp_path: Path) -> None:
    overrides = ["seed=0", r"+note=a\ b", "+tag='x;y'"]  # Hydra's escaped and quoted spellings
    write_multirun(tmp_path, {"seed": "0"}, overrides[1:])
    crashed = failed_results("sst2", "safr", 0.1, 0.1, 0, "RuntimeError: CUDA out of memory")
    crashed["error"] = "RuntimeError"
    write_job(tmp_path, "0_oom", overrides, crashed)
    (job,) = collect_jobs(tmp_path)
    assert job.status == FAILED
    argv = shlex.split(job.rerun_command() or "")
    assert argv[3:-1] == overrides  # each reaches Hydra exactly as the sweep recorded it
    assert argv[-1] == f"hydra.run.dir={(tmp_path / '0_oom').resolve()}"


def test_an_interrupted_job_is_missing_with_its_reason_and_resumes(tmp_path: Path) -> None:
    write_multirun(tmp_path, {"seed": "0"}, ["dataset=sst2", "+row=baseline"])
    reason = "interrupted by SIGTERM during training (epoch 3, global step 651); continue with ckpt_path=..."
    stopped = write_job(
        tmp_path, "0_job", job_overrides("sst2", "baseline"), {"status": "interrupted", "reason": reason}
    )
    (stopped / "checkpoints").mkdir()
    (stopped / "checkpoints" / "last.ckpt").write_bytes(b"")
    (job,) = collect_jobs(tmp_path)
    assert (job.status, job.reason) == (MISSING, reason)
    assert (job.rerun_command() or "").endswith(f"ckpt_path={stopped.resolve()}")


def test_a_relaunch_of_part_of_a_sweep_keeps_the_earlier_seeds_of_the_same_config(tmp_path: Path) -> None:
    """`-m seed=2 hydra.sweep.dir=<same>` rewrites multirun.yaml; seeds 0 and 1 are still this config's."""
    rng = random.Random(0)
    write_multirun(tmp_path, {"seed": "2"}, ["dataset=sst2", "+row=baseline"])
    for seed in (0, 1):
        write_job(tmp_path, f"{seed}_old", ["dataset=sst2", "+row=baseline", f"seed={seed}"],
                  fake_results(rng, "sst2", "baseline", 0, 0, seed))  # fmt: skip
    jobs = sorted(collect_jobs(tmp_path), key=lambda j: (j.num is not None, str(j.dir)))
    assert [(j.num, j.status) for j in jobs] == [(None, OK), (None, OK), (0, MISSING)]


def test_a_renumbered_relaunch_tables_the_jobs_own_folder_and_lists_the_older_run(tmp_path: Path) -> None:
    rng = random.Random(1)
    write_multirun(tmp_path, {"seed": "0,1"}, ["dataset=sst2", "+row=baseline"])
    overrides = ["dataset=sst2", "+row=baseline", "seed=1"]
    write_job(tmp_path, "0_from_an_earlier_launch", overrides, fake_results(rng, "sst2", "baseline", 0, 0, 1))
    write_job(tmp_path, "1_this_launch", overrides, fake_results(rng, "sst2", "baseline", 0, 0, 1))
    jobs = {j.dir.name if j.dir else f"job {j.num}": j for j in collect_jobs(tmp_path)}
    assert jobs["1_this_launch"].num == 1 and jobs["1_this_launch"].status == OK
    older = jobs["0_from_an_earlier_launch"]
    assert older.num is None and older.status == OTHER_LAUNCH
    assert older.reason == "an earlier run of the same job, superseded by 1_this_launch"
    assert jobs["job 0"].status == MISSING  # seed 0 never ran
