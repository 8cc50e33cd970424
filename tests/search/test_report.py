"""After a study: the front re-trained with seeds, in parallel, recorded, and its test means reported."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from safr_lightning.search.report import (
    RETEST_DIR,
    RETEST_RECORD,
    front_of,
    load_trials,
    render_csv,
    render_markdown,
    runs_summary,
)
from tests.cli_runs import CLI_ENV, run_train
from tests.conftest import REPO
from tests.search.test_study import STUDY


def search(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in {**os.environ, **CLI_ENV}.items() if v is not None}
    env.pop("OMP_NUM_THREADS", None)  # --jobs chooses the re-tests' threads
    return subprocess.run([sys.executable, "-m", "safr_lightning.search", *args], capture_output=True, text=True,
                          env=env, timeout=600)  # fmt: skip


def test_the_front_is_retested_with_seeds_in_parallel_and_recorded(tmp_path: Path) -> None:
    records = tmp_path / "records"
    done = run_train(*STUDY, f"paths.multirun_dir={tmp_path}", f"hydra.sweeper.records={records}",
                     "hydra.sweeper.n_trials=3", timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    sweep_dir = tmp_path / "search" / "pareto_synthetic_exact"
    front = front_of(load_trials(sweep_dir)[2])
    assert front

    report_dir = tmp_path / "report"
    first = search(str(sweep_dir), "--retest", "--seeds", "0", "1", "--jobs", "2", "--name", "r",
                   "--results", str(report_dir))  # fmt: skip
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.count(": ok") == 2 * len(front)
    threads = max(1, (os.cpu_count() or 1) // 2)
    report = json.loads((report_dir / "r.json").read_text())
    points = {p["trial"]: p for p in report["front"]}
    assert set(points) == {t.number for t in front}
    # The table says where its runs ran: the re-tests' threads beside the trials', and the precision.
    assert threads in report["runs"]["threads"] and report["runs"]["precisions"] == ["32-true"]
    machine = (report_dir / "r.md").read_text().split("Machine: ")[1].splitlines()[0]
    assert "torch" in machine and f"Torch threads per run: {', '.join(map(str, report['runs']['threads']))};" in machine
    for trial in front:
        tested = []
        for seed in (0, 1):
            record = json.loads((records / RETEST_RECORD.format(trial.number, seed)).read_text())
            assert record["seed"] == seed and record["status"] == "ok"
            assert record["lambda"] == {"imp": trial.imp, "inter": trial.inter}
            assert record["machine"]["threads"] == threads  # cores // jobs, not the caller's setting
            tested.append(record)
        point = points[trial.number]
        assert point["seeds"] == 2
        assert point["test_acc"]["mean"] == pytest.approx(statistics.mean(100 * r["test"]["acc"] for r in tested))
        srs = [r["test"]["srs"]["30"] for r in tested]
        assert point["test_srs@30"]["mean"] == pytest.approx(statistics.mean(srs))

    # Finished re-tests are not run again; from the records alone (no retest folders) the report is the same.
    again = search(str(sweep_dir), "--retest", "--seeds", "0", "1", "--jobs", "2")
    assert again.returncode == 0 and ": ok" not in again.stdout, again.stdout
    shutil.rmtree(sweep_dir / RETEST_DIR)
    rebuilt = search(str(sweep_dir), "--seeds", "0", "1", "--name", "r2", "--results", str(report_dir))
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
    assert json.loads((report_dir / "r2.json").read_text())["front"] == report["front"]


@pytest.mark.parametrize("bad", [["--jobs", "0"], ["--threads", "0"]])
def test_retest_jobs_and_threads_must_be_positive(tmp_path: Path, bad: list[str]) -> None:
    done = search(str(tmp_path), "--retest", *bad)
    assert done.returncode == 2 and "must be at least 1" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("url", ["bogus://x", "sqlite:///{tmp}/no/such/dir/study.db", "sqlite:///{tmp}/not_a_db"])
def test_a_storage_that_cannot_be_opened_is_one_line(tmp_path: Path, url: str) -> None:
    (tmp_path / "not_a_db").write_text("plain text\n")
    url = url.format(tmp=tmp_path)
    done = search(str(tmp_path), "--storage", url)
    assert done.returncode != 0 and f"cannot open the study storage '{url}'" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_storage_with_several_studies_needs_study(tmp_path: Path) -> None:
    import optuna

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    for name in ("a", "b"):
        study = optuna.create_study(study_name=name, storage=url, directions=["maximize", "maximize"])
        study.add_trial(
            optuna.trial.create_trial(params={}, distributions={}, values=[0.5, 1.0 if name == "a" else 2.0])
        )
    several = search(str(tmp_path), "--storage", url)
    assert several.returncode != 0 and "holds 2 studies (a, b); choose one with --study" in several.stderr
    chosen = search(str(tmp_path), "--storage", url, "--study", "b")
    assert chosen.returncode == 0 and "study b: 1 trials" in chosen.stdout, chosen.stderr
    unknown = search(str(tmp_path), "--storage", url, "--study", "c")
    assert unknown.returncode != 0 and "has no study 'c' (it holds: a, b)" in unknown.stderr
    named = search(str(tmp_path), "--storage", url, "--study", "b", "--name", "r", "--results", str(tmp_path))
    assert named.returncode == 0, named.stderr
    assert f"--storage {url} --study b" in json.loads((tmp_path / "r.json").read_text())["command"]
    empty = search(str(tmp_path), "--storage", f"sqlite:///{tmp_path / 'empty.db'}")
    assert empty.returncode != 0 and "holds no study" in empty.stderr


STUDIES = sorted(
    p for p in (REPO / "docs" / "results").glob("*.json") if json.loads(p.read_text()).get("kind") == "pareto"
)


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_a_committed_study_table_is_rendered_from_its_json(path: Path) -> None:
    report = json.loads(path.read_text())
    assert path.with_suffix(".md").read_text() == render_markdown(report)
    assert path.with_suffix(".csv").read_bytes().decode() == render_csv(report)
    assert path.with_suffix(".png").is_file()
    records = path.parent / path.stem  # every front point's test mean comes from its committed re-tests
    runs = [json.loads(p.read_text())["results"] for p in sorted(records.glob("trial_*.json"))]
    runs += [json.loads(p.read_text()) for p in sorted(records.glob("retest_*.json"))]
    assert report["runs"] == runs_summary(runs) and report["runs"]["machines"]  # machine, threads, precision
    for point in report["front"]:
        tested = [json.loads((records / RETEST_RECORD.format(point["trial"], s)).read_text()) for s in (0, 1, 2)]
        assert point["seeds"] == 3
        assert point["test_acc"]["mean"] == pytest.approx(statistics.mean(100 * r["test"]["acc"] for r in tested))
    assert "/work/" not in path.read_text() and "/home/" not in path.read_text()
