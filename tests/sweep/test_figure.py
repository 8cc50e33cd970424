from __future__ import annotations

import random
from pathlib import Path

import pytest

from safr_lightning.plots.style import save_figure
from safr_lightning.sweep.figure import deletion_curve, deletion_figure, figure_rows
from safr_lightning.sweep.jobs import collect_jobs
from safr_lightning.sweep.table import summarize
from tests.sweep_fixtures import fake_results, write_job

CONFIGS = [
    ("baseline", 0.0, 0.0),
    ("safr", 0.0, 0.0),
    ("safr", 0.1, 0.1),
    ("safr", 1.0, 1.0),
    ("safr", 5.0, 5.0),
]


@pytest.fixture
def rows(tmp_path: Path) -> list:
    rng = random.Random(3)
    for model, imp, inter in CONFIGS:
        for seed in range(2):
            results = fake_results(rng, "sst2", model, imp, inter, seed, ks=(10, 20, 30))
            write_job(tmp_path, f"{model}{imp}_{inter}_{seed}", None, results)
    return summarize(collect_jobs(tmp_path), "sst2", k=30)


def test_figure_shows_baseline_vmask_only_and_the_best_srs_row(rows: list) -> None:
    chosen = figure_rows(rows)
    regularized = [r for r in rows if r.key.model == "safr" and (r.key.imp, r.key.inter) != (0, 0)]
    best = max(regularized, key=lambda r: r.stats["srs"].mean)
    assert [row.key for row, _ in chosen] == [rows[0].key, rows[1].key, best.key]
    assert chosen[0][0].key.model == "baseline" and (chosen[1][0].key.imp, chosen[1][0].key.inter) == (0, 0)


def test_deletion_curve_starts_at_the_full_test_accuracy(rows: list) -> None:
    row = rows[2]
    curve = deletion_curve(row, "x")
    assert curve is not None and curve.ks == [0.0, 10.0, 20.0, 30.0]
    tests = [job.results["test"] for job in row.runs]
    assert curve.capacity[0].mean == pytest.approx(sum(100 * t["acc"] for t in tests) / len(tests))
    assert curve.random[0] == curve.capacity[0]
    assert curve.capacity[2].mean == pytest.approx(sum(100 * t["acc_capacity"]["20"] for t in tests) / len(tests))
    assert curve.random[3].mean == pytest.approx(sum(100 * t["acc_random"]["30"] for t in tests) / len(tests))


def test_figure_is_written_as_png_and_svg(rows: list, tmp_path: Path) -> None:
    fig = deletion_figure("sst2", rows)
    assert fig is not None
    png, svg = save_figure(fig, tmp_path / "f", formats=("png", "svg"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and b"<svg" in svg.read_bytes()[:500]
    assert sorted(p.name for p in tmp_path.glob(".*.tmp")) == []  # no temporary file left behind


def test_no_figure_without_deletion_results(tmp_path: Path) -> None:
    results = fake_results(random.Random(0), "sst2", "baseline", 0.0, 0.0, 0)
    results["test"] = {"acc": 0.7}
    write_job(tmp_path, "a", None, results)
    assert deletion_figure("sst2", summarize(collect_jobs(tmp_path), "sst2", 30)) is None
