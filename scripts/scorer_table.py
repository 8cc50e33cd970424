"""SRS@k of each token scorer, per dataset and configuration of a sweep, as mean ± sample std over seeds.

    for d in SWEEP_DIR/*/; do for s in vmask attention; do
        python -m safr_lightning.evaluate ckpt_path=$d srs.scorer=$s; done; done
    python scripts/scorer_table.py SWEEP_DIR [--k 30]

Capacity (FC1) comes from each job's results.json, the other scorers from the
``evaluation_<scorer>.json`` files that ``safr_lightning.evaluate`` wrote beside it. A scorer that
does not apply (``vmask`` on the Baseline, which has no VMASK) shows as ``-``. Configurations are
told apart by model and λ only: give it one sweep of the paper's rows, not a sweep that also varies
other keys.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

SCORERS = ("capacity", "vmask", "attention")


def label(results: dict) -> str:
    if results["model"] == "baseline":
        return "Baseline"
    return f"λ_imp={results['lambda']['imp']:g}, λ_inter={results['lambda']['inter']:g}"


def cell(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f} (n=1)"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f} (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--k", type=float, default=30.0)
    args = parser.parse_args()
    key = f"{args.k:g}"

    # dataset -> configuration -> scorer -> SRS@k of each seed
    tables: dict[str, dict[str, dict[str, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for results_file in sorted(args.sweep_dir.glob("*/results.json")):
        results = json.loads(results_file.read_text())
        if results.get("status") != "ok":
            continue
        row = tables[results["dataset"]][label(results)]
        row["capacity"].append(results["test"]["srs"][key])
        for scorer in SCORERS[1:]:
            evaluation = results_file.parent / f"evaluation_{scorer}.json"
            if evaluation.exists():
                row[scorer].append(json.loads(evaluation.read_text())["test"]["srs"][key])

    for dataset, table in sorted(tables.items()):
        print(f"\n{dataset}\n")
        print(f"| Model | {' | '.join(f'SRS@{key} {s}' for s in SCORERS)} |")
        print("|---|" + "---:|" * len(SCORERS))
        for name, row in table.items():
            print(f"| {name} | {' | '.join(cell(row[s]) for s in SCORERS)} |")


if __name__ == "__main__":
    main()
