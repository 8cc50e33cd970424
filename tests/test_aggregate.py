from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from safr_lightning.aggregate import aggregate, main
from tests.conftest import REPO, SUBPROCESS_ENV, TINY
from tests.sweep_fixtures import failed_results, fake_results, write_job, write_multirun

ROWS = {
    "baseline": ("baseline", 0.0, 0.0),
    "imp0.1_inter0.1": ("safr", 0.1, 0.1),
    "imp1_inter1": ("safr", 1.0, 1.0),
}


def hand_made_sweep(root: Path) -> Path:
    """Two datasets × three rows × two seeds; one failed job, one killed, one never started."""
    rng = random.Random(11)
    write_multirun(root, {"dataset": "sst2,imdb", "seed": "0,1", "+row": ",".join(ROWS)}, [])
    num = 0
    for dataset in ("sst2", "imdb"):
        for seed in (0, 1):
            for row, (model, imp, inter) in ROWS.items():
                overrides = [f"dataset={dataset}", f"seed={seed}", f"+row={row}"]
                name = f"{num}_{row}_s{seed}_{dataset}"
                if num == 4:
                    write_job(root, name, overrides, failed_results(dataset, model, imp, inter, seed, "boom"))
                elif num == 7:
                    write_job(root, name, overrides, None)
                elif num != 11:
                    write_job(
                        root,
                        name,
                        overrides,
                        fake_results(rng, dataset, model, imp, inter, seed, ks=(10, 30)),
                    )
                num += 1
    return root


def test_table_figure_and_problem_list_per_dataset(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = hand_made_sweep(tmp_path / "sweep")
    assert main([str(root)]) == 0
    names = sorted(p.name for p in root.iterdir() if p.is_file())
    assert names == sorted(
        [f"ablation_{d}.{e}" for d in ("sst2", "imdb") for e in ("md", "csv")]
        + [f"deletion_{d}.{e}" for d in ("sst2", "imdb") for e in ("png", "svg")]
        + ["multirun.yaml"]
    )
    sst2 = (root / "ablation_sst2.md").read_text()
    assert "- **failed** `4_imp0.1_inter0.1_s1_sst2`: boom" in sst2 and "## Missing or failed jobs (1)" in sst2
    imdb = (root / "ablation_imdb.md").read_text()
    assert "- **missing** `7_imp0.1_inter0.1_s0_imdb`: no results.json" in imdb
    assert "- **missing** `job 11` (`dataset=imdb seed=1 +row=imp1_inter1`): never started" in imdb
    rerun = (
        f"python -m safr_lightning.train dataset=imdb seed=1 +row=imp1_inter1 hydra.run.dir={root.resolve()}/11_rerun"
    )
    assert f"  re-run (once the sweep has stopped): `{rerun}`" in imdb
    records = list(csv.DictReader((root / "ablation_imdb.csv").open()))
    assert [(r["row"], r["n"]) for r in records] == [
        ("Baseline", "2"),
        ("λ_imp=0.1, λ_inter=0.1", "1"),
        ("λ_imp=1, λ_inter=1", "1"),
    ]
    out = capsys.readouterr().out
    assert "12 jobs: 9 ok, 1 failed, 2 missing" in out and f"    re-run (once the sweep has stopped): {rerun}" in out


def test_rerunning_on_a_sweep_gives_the_same_tables(tmp_path: Path) -> None:
    root = hand_made_sweep(tmp_path / "sweep")
    assert main([str(root), "--no-figures"]) == 0
    first = {p.name: p.read_bytes() for p in root.glob("ablation_*")}
    assert main([str(root), "--no-figures"]) == 0
    assert {p.name: p.read_bytes() for p in root.glob("ablation_*")} == first
    assert not list(root.glob("deletion_*")) and not list(root.glob("*.tmp")) and not list(root.glob(".*.tmp"))


def test_k_picks_the_deletion_level(tmp_path: Path) -> None:
    root = hand_made_sweep(tmp_path / "sweep")
    assert main([str(root), "--k", "30", "--no-figures"]) == 0
    paper = (root / "ablation_sst2.csv").read_text()
    assert main([str(root), "--k", "10", "--no-figures"]) == 0
    (record, *_) = csv.DictReader((root / "ablation_sst2_k10.csv").open())
    assert record["k"] == "10"
    assert (root / "ablation_sst2.csv").read_text() == paper  # the k = 30 table is not overwritten
    assert main([str(root), "--k", "20", "--no-figures"]) == 0  # not recorded: empty, not wrong
    (record, *_) = csv.DictReader((root / "ablation_sst2_k20.csv").open())
    assert record["srs_mean"] == "" and record["acc_s_mean"] != ""


def test_without_a_dir_the_newest_sweep_under_multirun(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = hand_made_sweep(tmp_path / "multirun" / "paper" / "old")
    os.utime(old / "multirun.yaml", (1e9, 1e9))
    new = hand_made_sweep(tmp_path / "multirun" / "paper" / "new")
    monkeypatch.chdir(tmp_path)
    assert main(["--no-figures"]) == 0
    assert (new / "ablation_sst2.md").is_file() and not (old / "ablation_sst2.md").exists()


@pytest.mark.parametrize("args", [["no/such/dir"], ["--k", "120"]])
def test_bad_input_is_one_error_line(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    hand_made_sweep(tmp_path / "multirun" / "x")
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


def test_a_usage_error_is_one_line_too(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--k", "abc"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: argument --k: invalid float value: 'abc' (see --help)"
    ]


def test_a_k_no_job_measured_is_said_not_left_as_empty_columns(tmp_path: Path) -> None:
    root = hand_made_sweep(tmp_path / "sweep")
    notes = aggregate(root, k=25, figures=False).notes
    assert "no job measured k=25 (their srs.ks: 10, 30): the deletion columns are empty" in notes
    assert not any("no job measured" in n for n in aggregate(root, k=30, figures=False).notes)


def run(module: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO, env={**os.environ, **SUBPROCESS_ENV}, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.mark.slow
def test_sweep_of_two_configurations_gives_two_job_dirs_and_a_two_row_table(tmp_path: Path) -> None:
    proc = run(
        "safr_lightning.train", "-m", "+sweep=paper", "+row=baseline,imp0.1_inter0.1", "seed=0",
        *TINY, "trainer.max_epochs=1", f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert jobs == ["0_baseline_imp0.0_inter0.0_s0_synthetic", "1_safr_imp0.1_inter0.1_s0_synthetic"]
    proc = run("safr_lightning.aggregate", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 jobs: 2 ok, 0 failed, 0 missing" in proc.stdout
    table = (tmp_path / "ablation_synthetic.md").read_text()
    body = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [line.split(" | ")[0] for line in body] == ["| Baseline", "| λ_imp=0.1, λ_inter=0.1"]
    assert "## Missing or failed jobs (0)" in table


@pytest.mark.slow
def test_a_failing_job_does_not_stop_the_sweep_and_is_named_in_the_table(tmp_path: Path) -> None:
    # λ_imp = -1 is rejected by validation: the job fails, the sweep goes on (tests/test_train_errors.py
    # has a sweep with a diverging job too).
    proc = run(
        "safr_lightning.train", "-m", "+sweep=paper", "+row=imp0.1_inter0.1", "lambda.imp=-1,0.1", "seed=0",
        *TINY, "trainer.max_epochs=1", f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-3000:]  # the sweep ran both jobs, then said one failed
    assert main([str(tmp_path), "--no-figures"]) == 0
    table = (tmp_path / "ablation_synthetic.md").read_text()
    assert "- **failed** `0_safr_imp-1.0_inter0.1_s0_synthetic`: invalid config: lambda.imp=-1.0" in table
    records = list(csv.DictReader((tmp_path / "ablation_synthetic.csv").open()))
    assert [(r["lambda_imp"], r["n"], r["failed"]) for r in records] == [
        ("0.1", "1", "0"),
        ("-1.0", "0", "1"),
    ]
