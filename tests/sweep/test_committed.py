"""Committed per-job records: a table that grows job by job across sessions."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from safr_lightning.errors import SAFRError
from safr_lightning.sweep.committed import PLANS, ROWS, import_runs, missing, records, render, save_record
from safr_lightning.sweep.paper_tables import TABLE6_ROWS
from tests.sweep_fixtures import fake_results


def run_dir(root: Path, name: str, dataset: str, row: str, seed: int, fidelity: str, rng: random.Random) -> Path:
    model, imp, inter = ROWS[row]
    results = fake_results(rng, dataset, model, imp, inter, seed)
    results["fidelity"] = {"mode": fidelity}
    results["machine"] = {"threads": 1}
    results["precision"] = {"requested": "32-true", "used": "32-true", "why": "set by trainer.precision"}
    path = root / name
    path.mkdir(parents=True)
    (path / "results.json").write_text(json.dumps(results))
    return path


def test_plans_cover_the_issues_tables_seed_by_seed() -> None:
    table6 = PLANS["sst2_table6_paper"]
    assert len(table6.jobs) == 14 * 3 and len(ROWS) == len(TABLE6_ROWS) == 14
    # Every row gets seed 0 before any row gets seed 1.
    assert [job.seed for job in table6.jobs[:14]] == [0] * 14 and table6.jobs[14].seed == 1
    assert {job.fidelity for job in table6.jobs} == {"paper"}
    imdb = PLANS["imdb_paper_mode"]
    assert [job.row for job in imdb.jobs[:3]] == ["baseline", "imp0_inter0", "imp0.1_inter1"] and len(imdb.jobs) == 9
    assert {job.fidelity for job in PLANS["imdb_exact"].jobs} == {"exact"}


def test_a_finished_job_is_recorded_and_no_longer_missing(tmp_path: Path) -> None:
    plan = PLANS["imdb_exact"]
    rng = random.Random(0)
    job = plan.jobs[0]
    src = run_dir(tmp_path / "runs", "a", "imdb", job.row, job.seed, "exact", rng)
    path = save_record(plan, job, src, tmp_path / "results")
    assert path == tmp_path / "results" / "imdb_exact" / "imdb_baseline_s0.json"
    assert missing(plan, tmp_path / "results") == list(plan.jobs[1:])
    assert records(plan, tmp_path / "results")["imdb_baseline_s0"]["results"]["seed"] == 0


def test_a_run_of_another_configuration_is_not_recorded_as_the_job(tmp_path: Path) -> None:
    plan = PLANS["imdb_exact"]
    rng = random.Random(1)
    paper = run_dir(tmp_path, "paper", "imdb", "baseline", 0, "paper", rng)  # the other fidelity
    with pytest.raises(SAFRError, match="another configuration"):
        save_record(plan, plan.jobs[0], paper, tmp_path / "results")
    failed = run_dir(tmp_path, "failed", "imdb", "baseline", 0, "exact", rng)
    data = json.loads((failed / "results.json").read_text())
    (failed / "results.json").write_text(json.dumps({**data, "status": "failed"}))
    with pytest.raises(SAFRError, match="no finished run"):
        save_record(plan, plan.jobs[0], failed, tmp_path / "results")


def test_the_table_is_rendered_from_the_records_so_far_and_says_n(tmp_path: Path) -> None:
    plan = PLANS["imdb_exact"]
    rng = random.Random(2)
    runs = tmp_path / "sweep"
    run_dir(runs, "0_baseline_s0", "imdb", "baseline", 0, "exact", rng)
    run_dir(runs, "1_baseline_s1", "imdb", "baseline", 1, "exact", rng)
    run_dir(runs, "2_safr_s0", "imdb", "imp0.1_inter1", 0, "exact", rng)
    run_dir(runs, "3_other", "imdb", "imp1_inter1", 0, "exact", rng)  # not a job of this plan
    imported = import_runs(plan, [runs], tmp_path / "results")
    assert sorted(p.name for p in imported) == ["imdb_baseline_s0.json", "imdb_baseline_s1.json",
                                                "imdb_imp0.1_inter1_s0.json"]  # fmt: skip
    assert import_runs(plan, [runs], tmp_path / "results") == []  # recorded once
    written = render(plan, tmp_path / "results")
    table = (tmp_path / "results" / "imdb_exact.md").read_text()
    assert [p.name for p in written] == ["imdb_exact.json", "imdb_exact.md", "imdb_exact.csv"]
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[1] for line in table.splitlines()
            if line.startswith("| ") and " | " in line and not line.startswith("| Model")}  # fmt: skip
    assert rows == {"Baseline": "2", "λ_imp=0.1, λ_inter=1": "1"}
    assert "3 of 9 jobs finished; 6 still to run" in table
    assert "torch threads per job: 1; precision: 32-true." in table  # what each table must say


def test_missing_jobs_get_the_thread_count_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from safr_lightning.sweep import committed

    seen: list[str] = []

    def fake_side_by_side(items, jobs, command_of, finish):  # each job fails at once: only its threads matter
        outcomes = []
        for item in items:
            argv, extra = command_of(item)
            seen.append(extra["OMP_NUM_THREADS"])
            outcomes.append(finish(item, subprocess.CompletedProcess(argv, 1, None, "boom")))
        return outcomes

    monkeypatch.setattr(committed, "run_side_by_side", fake_side_by_side)
    plan = PLANS["imdb_exact"]
    for jobs, threads, expected in [(1, None, "2"), (2, None, "1"), (1, 1, "1")]:
        seen.clear()
        lines = committed.run_missing(plan, tmp_path, jobs, [], tmp_path / "results", None, 1, threads)
        assert seen == [expected] and "failed (exit 1: boom)" in lines[0]


def test_list_only_reads(tmp_path: Path) -> None:
    from safr_lightning.sweep.committed import main

    readme = tmp_path / "README.md"
    readme.write_text("<!-- results:imdb_exact -->\n")
    assert main(["imdb_exact", "--list", "--results", str(tmp_path / "results"), "--readme", str(readme)]) == 0
    assert readme.read_text() == "<!-- results:imdb_exact -->\n" and not (tmp_path / "results").exists()


def test_the_readme_says_what_remains_from_the_records(tmp_path: Path) -> None:
    """The README's remaining-jobs block follows the records: counts, next job, hours from measured runs."""
    from safr_lightning.sweep.committed import fill_remaining

    plan = PLANS["imdb_exact"]
    results = tmp_path / "results"
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- committed:remaining -->\nstale\n<!-- /committed:remaining -->\nend\n")
    before = fill_remaining(readme.read_text(), results)
    assert "- `imdb_exact`: 0 of 9 jobs have a record; 9 still to run, about 10.8 CPU hours" in before
    assert "(1.20 h a job, estimated, at 1 torch thread); next: `imdb_baseline_s0`." in before
    assert "stale" not in before and before.startswith("intro\n") and before.endswith("end\n")

    src = run_dir(tmp_path / "runs", "a", "imdb", "baseline", 0, "exact", random.Random(3))
    data = json.loads((src / "results.json").read_text())
    data["timing"] = {"fit_s": 3600.0, "test_s": 1800.0}  # 1.5 h
    (src / "results.json").write_text(json.dumps(data))
    save_record(plan, plan.jobs[0], src, results)
    render(plan, results, readme)  # a finished job re-renders the block with its table
    after = readme.read_text()
    assert "- `imdb_exact`: 1 of 9 jobs have a record; 8 still to run, about 12.0 CPU hours" in after
    assert "(1.50 h a job, the mean of 1 record at 1 torch thread); next: `imdb_imp0_inter0_s0`." in after
    assert "- `sst2_table6_paper`: 0 of 42 jobs have a record; 42 still to run" in after


def test_a_finished_plan_says_so_and_names_no_next_job(tmp_path: Path) -> None:
    from safr_lightning.sweep.committed import remaining_markdown

    plan = PLANS["imdb_exact"]
    rng = random.Random(4)
    for i, job in enumerate(plan.jobs):
        save_record(plan, job, run_dir(tmp_path / "runs", str(i), "imdb", job.row, job.seed, "exact", rng),
                    tmp_path / "results")  # fmt: skip
    assert "- `imdb_exact`: 9 of 9 jobs have a record.\n" in remaining_markdown(tmp_path / "results")
