from __future__ import annotations

import csv
import io
import math
import random
from pathlib import Path

import pytest

from safr_lightning.results import value_at_k
from safr_lightning.sweep.jobs import collect_jobs
from safr_lightning.sweep.paper_tables import TABLE6
from safr_lightning.sweep.table import csv_text, markdown, mean_std, problems, summarize
from tests.sweep_fixtures import failed_results, fake_results, write_job

CONFIGS = [("safr", 0.1, 0.1), ("baseline", 0.0, 0.0), ("safr", 0.5, 2.0), ("safr", 0.0, 0.0)]


def hand_stats(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


@pytest.fixture
def sweep(tmp_path: Path) -> tuple[Path, dict]:
    """Three seeds of four configurations on SST-2 with random results; returns what was written."""
    rng = random.Random(7)
    written: dict = {}
    for model, imp, inter in CONFIGS:
        for seed in range(3):
            results = fake_results(rng, "sst2", model, imp, inter, seed)
            write_job(tmp_path, f"{model}_{imp}_{inter}_s{seed}", None, results)
            written.setdefault((model, imp, inter), []).append(results)
    return tmp_path, written


def test_rows_hold_mean_and_sample_std_over_seeds(sweep: tuple[Path, dict]) -> None:
    root, written = sweep
    rows = summarize(collect_jobs(root), "sst2", k=30)
    assert len(rows) == len(CONFIGS)
    for row in rows:
        runs = written[(row.key.model, row.key.imp, row.key.inter)]
        expected = {
            "acc_s": hand_stats([100 * r["test"]["acc"] for r in runs]),
            "acc_random": hand_stats([100 * r["test"]["acc_random"]["30"] for r in runs]),
            "acc_capacity": hand_stats([100 * r["test"]["acc_capacity"]["30"] for r in runs]),
            "srs": hand_stats([r["test"]["srs"]["30"] for r in runs]),
        }
        assert row.n == 3 and row.seeds == [0, 1, 2]
        for metric, (mean, std) in expected.items():
            assert row.stats[metric].mean == pytest.approx(mean, abs=1e-9)
            assert row.stats[metric].std == pytest.approx(std, abs=1e-9)


def test_csv_and_markdown_carry_the_same_numbers(sweep: tuple[Path, dict]) -> None:
    root, written = sweep
    jobs = collect_jobs(root)
    rows = summarize(jobs, "sst2", k=10)
    records = list(csv.DictReader(io.StringIO(csv_text("sst2", rows, 10))))
    table = markdown("sst2", rows, problems(jobs, "sst2"), 10, root)
    for record in records:
        runs = written[(record["model"], float(record["lambda_imp"]), float(record["lambda_inter"]))]
        mean, std = hand_stats([r["test"]["srs"]["10"] for r in runs])
        assert float(record["srs_mean"]) == pytest.approx(mean) and float(record["srs_std"]) == pytest.approx(std)
        assert f"{mean:.2f} ± {std:.2f}" in table
        assert record["k"] == "10" and record["n"] == "3"


def test_rows_follow_table6_order_then_other_configurations(sweep: tuple[Path, dict]) -> None:
    rows = summarize(collect_jobs(sweep[0]), "sst2", k=30)
    assert [r.key.label for r in rows] == [
        "Baseline",
        "λ_imp=0, λ_inter=0",
        "λ_imp=0.1, λ_inter=0.1",
        "λ_imp=0.5, λ_inter=2",
    ]
    assert rows[2].paper == TABLE6["sst2"][("safr", 0.1, 0.1)]
    assert rows[3].paper is None  # not a row of the paper


def test_paper_values_sit_beside_ours_only_for_the_papers_datasets(tmp_path: Path) -> None:
    rng = random.Random(0)
    write_job(tmp_path, "a", None, fake_results(rng, "synthetic", "safr", 0.1, 0.1, 0))
    write_job(tmp_path, "b", None, fake_results(rng, "imdb", "safr", 0.1, 1.0, 0))
    jobs = collect_jobs(tmp_path)
    synthetic, imdb = summarize(jobs, "synthetic", 30), summarize(jobs, "imdb", 30)
    assert synthetic[0].paper is None and "*paper*" not in markdown("synthetic", synthetic, [], 30, tmp_path)
    assert imdb[0].paper is not None and imdb[0].paper.srs == 28.48
    assert "| 28.48 |" in markdown("imdb", imdb, [], 30, tmp_path)


def test_failed_runs_are_counted_apart_and_listed(tmp_path: Path) -> None:
    rng = random.Random(1)
    write_job(tmp_path, "ok", None, fake_results(rng, "sst2", "safr", 1.0, 1.0, 0))
    write_job(tmp_path, "bad", None, failed_results("sst2", "safr", 1.0, 1.0, 1, "non-finite loss at step 3"))
    jobs = collect_jobs(tmp_path)
    (row,) = summarize(jobs, "sst2", 30)
    assert row.n == 1 and row.failed == 1 and row.stats["acc_s"].std is None
    table = markdown("sst2", [row], problems(jobs, "sst2"), 30, tmp_path)
    assert "**failed** `bad`: non-finite loss at step 3" in table
    assert "## Missing or failed jobs (1)" in table


def test_a_column_without_values_stays_empty_not_zero(tmp_path: Path) -> None:
    results = fake_results(random.Random(2), "sst2", "safr", 0.1, 0.1, 0)
    results["test"] = {"acc": 0.5}  # before the SRS evaluation existed
    write_job(tmp_path, "a", None, results)
    (row,) = summarize(collect_jobs(tmp_path), "sst2", 30)
    assert row.stats["acc_s"].mean == 50.0 and row.stats["srs"].mean is None and row.stats["srs"].n == 0
    (record,) = csv.DictReader(io.StringIO(csv_text("sst2", [row], 30)))
    assert record["srs_mean"] == "" and record["acc_capacity_mean"] == ""


def test_value_at_k_reads_integer_and_float_keys() -> None:
    assert value_at_k({"10": 0.5, "30": 0.25}, 30) == 0.25
    assert value_at_k({"10.0": 0.5, "30.0": 0.25}, 30.0) == 0.25
    assert value_at_k({"10": 0.5}, 30) is None and value_at_k(None, 30) is None


def test_mean_std_ignores_missing_and_non_finite_values() -> None:
    stat = mean_std([1.0, None, 3.0, float("nan")])
    assert stat.mean == 2.0 and stat.std == pytest.approx(math.sqrt(2.0)) and stat.n == 2
    assert mean_std([]).mean is None and mean_std([4.0]).std is None


def test_paper_and_exact_mode_runs_never_share_a_row(tmp_path: Path) -> None:
    rng = random.Random(3)
    for mode in ("exact", "paper", "paper, init=exact"):
        for seed in range(2):
            results = fake_results(rng, "sst2", "safr", 0.1, 0.1, seed)
            results["fidelity"] = {"mode": mode}
            write_job(tmp_path, f"{mode.replace(', ', '_').replace('=', '-')}_s{seed}", None, results)
    rows = summarize(collect_jobs(tmp_path), "sst2", k=30)
    assert [(row.key.fidelity, row.n) for row in rows] == [("exact", 2), ("paper", 2), ("paper, init=exact", 2)]
    assert [row.key.label for row in rows] == [
        "λ_imp=0.1, λ_inter=0.1",
        "λ_imp=0.1, λ_inter=0.1 · fidelity: paper",
        "λ_imp=0.1, λ_inter=0.1 · fidelity: paper, init=exact",
    ]
    assert "fidelity" in csv_text("sst2", rows, 30).splitlines()[0]
