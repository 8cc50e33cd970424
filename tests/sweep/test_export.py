"""Committed results: export JSON -> markdown/CSV tables -> README blocks, and nothing typed by hand."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import pytest

from safr_lightning.sweep import export
from tests.sweep.test_table import hand_stats
from tests.sweep_fixtures import fake_results, write_job, write_multirun

REPO = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPO / "docs" / "results"


def record(mode: str, seed: int, acc: float, capacity30: float, source: str = "results.json") -> dict:
    results = fake_results(random.Random(seed), "sst2", "safr", 0.1, 0.1, seed)
    results["test"]["acc"] = acc
    results["test"]["acc_capacity"]["30"] = capacity30
    results["test"]["srs"]["30"] = 100 * (acc - capacity30)
    results["fidelity"] = {"mode": mode}
    return {"source": f"sweep/{mode}_{seed}/{source}", "overrides": [f"seed={seed}"], "results": results}


def test_decomposition_deltas_are_paired_by_seed() -> None:
    records = [record("paper", s, 0.70 + s / 100, 0.50) for s in range(3)]
    records += [record("paper, init=exact", s, 0.75 + 2 * s / 100, 0.60) for s in range(3)]
    table = export.render_table(export.build_export("d", "decomposition", records, title="t", command="c"))
    rows = [line for line in table.splitlines() if line.startswith("| λ")]
    assert rows[0].startswith("| λ_imp=0.1, λ_inter=0.1: paper | 3 |")
    switched = rows[1].split(" | ")
    # Acc_S: paper 70, 71, 72; switched 75, 77, 79: paired differences 5, 6, 7
    mean, std = hand_stats([5.0, 6.0, 7.0])
    assert f"{mean:+.2f} ± {std:.2f}" in switched
    # SRS: paper 20, 21, 22; switched 15, 17, 19 -> -5, -4, -3
    mean, std = hand_stats([-5.0, -4.0, -3.0])
    assert switched[-1].rstrip(" |") == f"{mean:+.2f} ± {std:.2f}"


def test_compact_results_hold_no_absolute_paths() -> None:
    results = {
        "run_dir": "/home/me/run",
        "checkpoint": "/home/me/run/checkpoints/last.ckpt",
        "resumed_from": {"checkpoint": "/x/y/checkpoints/last.ckpt", "epoch": 2},
        "test": {"acc": 0.5},
    }
    out = export.compact(results)
    assert "run_dir" not in out and out["checkpoint"] == "checkpoints/last.ckpt"
    assert out["resumed_from"] == {"checkpoint": "checkpoints/last.ckpt", "epoch": 2}
    assert "/home/" not in json.dumps(out)


def test_export_of_a_sweep_round_trips_through_files_and_readme(tmp_path: Path) -> None:
    rng = random.Random(5)
    root = tmp_path / "sweep"
    write_multirun(root, {"seed": "0,1"}, [])
    for seed in (0, 1):
        results = fake_results(rng, "sst2", "safr", 0.1, 0.1, seed)
        results["run_dir"] = str(root / f"{seed}_job")
        write_job(root, f"{seed}_job", [f"seed={seed}"], results)
    records = export.collect_records([root])
    data = export.build_export("demo", "ablation", records, title="Demo", command="make sweep")
    paths = export.write_export(data, tmp_path / "results")
    assert [p.name for p in paths] == ["demo.json", "demo.md", "demo.csv"]
    assert str(tmp_path) not in paths[0].read_text()
    table = export.render_table(json.loads(paths[0].read_text()))
    assert table in paths[1].read_text()
    readme = "intro\n<!-- results:demo -->\nstale\n<!-- /results:demo -->\nend\n"
    filled = export.fill_readme(readme, tmp_path / "results")
    assert export.readme_blocks(filled) == {"demo": table} and filled.endswith("end\n")
    with pytest.raises(FileNotFoundError, match="results:other"):
        export.fill_readme(readme.replace("demo", "other"), tmp_path / "results")


def committed_exports() -> list[Path]:
    """Every committed table json but a λ study's report (its own format: tests/search/test_report.py)."""
    return sorted(p for p in RESULTS_DIR.glob("*.json") if json.loads(p.read_text()).get("kind") != "pareto")


def test_readme_tables_are_rendered_from_the_committed_results() -> None:
    """Every results table in the README is exactly what its docs/results/<name>.json renders to."""
    blocks = export.readme_blocks((REPO / "README.md").read_text())
    assert blocks, "the README shows no results block"
    for name, body in blocks.items():
        path = RESULTS_DIR / f"{name}.json"
        assert path.is_file(), f"README block {name} has no {path}"
        assert body == export.render_table(export.load_export(path)), f"README block {name} is stale"


@pytest.mark.parametrize("path", committed_exports(), ids=lambda p: p.stem)
def test_committed_tables_are_rendered_from_their_json(path: Path) -> None:
    data = export.load_export(path)
    assert (RESULTS_DIR / f"{path.stem}.md").read_text() == export.render_markdown(data)
    assert (RESULTS_DIR / f"{path.stem}.csv").read_text() == export.render_csv(data)
    assert list(csv.DictReader(io.StringIO(export.render_csv(data))))
    assert "/work/" not in path.read_text() and "/home/" not in path.read_text()


def test_decomposition_shows_only_configurations_with_a_switch() -> None:
    records = [record("paper", s, 0.7, 0.5) for s in range(2)] + [record("exact", s, 0.8, 0.7) for s in range(2)]
    records += [record("paper, init=exact", s, 0.75, 0.6) for s in range(2)]
    baseline = record("paper", 0, 0.7, 0.6)
    baseline["results"]["model"] = "baseline"
    table = export.render_table(export.build_export("d", "decomposition", [*records, baseline], title="t", command="c"))
    labels = [line.split(" | ")[0] for line in table.splitlines()[2:]]
    assert labels == ["| λ_imp=0.1, λ_inter=0.1: paper", "| λ_imp=0.1, λ_inter=0.1: paper, init=exact",
                      "| λ_imp=0.1, λ_inter=0.1: exact"]  # fmt: skip


def test_decomposition_export_keeps_only_the_jobs_of_switched_configurations() -> None:
    switched = [record("paper", 0, 0.7, 0.5), record("exact", 0, 0.8, 0.7)]
    other_row = record("exact", 0, 0.8, 0.7)  # a whole exact sweep read for its one shared row
    other_row["results"]["lambda"] = {"imp": 1.0, "inter": 1.0}
    data = export.build_export("d", "decomposition", [*switched, other_row], title="t", command="c")
    assert data["records"] == switched
    assert len(export.build_export("d", "ablation", [*switched, other_row], title="t", command="c")["records"]) == 3


def test_export_json_is_one_line_per_record_and_loads_back() -> None:
    records = [record("paper", s, 0.7, 0.5) for s in range(3)]
    data = export.build_export("d", "ablation", records, title="t", command="c")
    text = export.dumps(data)
    assert json.loads(text) == json.loads(json.dumps(data))
    assert sum(line.startswith('  {"source"') for line in text.splitlines()) == 3


def test_readme_says_what_remains_of_the_committed_plans() -> None:
    """The README's list of remaining plan jobs is what the committed records give (no stale count)."""
    from safr_lightning.sweep.committed import fill_remaining

    readme = (REPO / "README.md").read_text()
    assert "<!-- committed:remaining -->" in readme
    assert fill_remaining(readme, RESULTS_DIR) == readme, "README's committed:remaining block is stale"
