"""SRS@k of each token scorer, per dataset and configuration of a sweep, as mean ± sample std over seeds.

    for d in SWEEP_DIR/*/; do for s in vmask attention; do
        python -m safr_lightning.evaluate ckpt_path=$d srs.scorer=$s; done; done
    python scripts/scorer_table.py SWEEP_DIR [--k 30]

Rows are the ablation table's (``make table``): the same jobs, configurations and order. Capacity
(FC1) comes from each job's results.json, the other scorers from the ``evaluation_<scorer>.json``
files that ``safr_lightning.evaluate`` wrote beside it. A scorer that does not apply (``vmask`` on
the Baseline, which has no VMASK) shows as ``–``; ``(n=…)`` marks a cell with fewer seeds than its row.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from safr_lightning.sweep.jobs import Job, collect_jobs
from safr_lightning.sweep.paper_tables import PAPER_K
from safr_lightning.sweep.table import datasets_of, fmt_stat, mean_std, summarize, value_at_k

SCORERS = ("capacity", "vmask", "attention")


def srs_of(job: Job, scorer: str, k: float) -> float | None:
    """SRS@k of one finished job with ``scorer``; None when that evaluation was not run."""
    if scorer == "capacity":
        return value_at_k((job.results or {}).get("test", {}).get("srs"), k)
    path = job.dir / f"evaluation_{scorer}.json" if job.dir is not None else None
    if path is None or not path.is_file():
        return None
    return value_at_k(json.loads(path.read_text()).get("test", {}).get("srs"), k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--k", type=float, default=PAPER_K)
    args = parser.parse_args()

    jobs = collect_jobs(args.sweep_dir)
    for dataset in datasets_of(jobs):
        print(f"\n{dataset}\n")
        print(f"| Model | n | {' | '.join(f'SRS@{args.k:g} {s}' for s in SCORERS)} |")
        print("|---|---:|" + "---:|" * len(SCORERS))
        for row in summarize(jobs, dataset, args.k):
            cells = [fmt_stat(mean_std(srs_of(job, s, args.k) for job in row.runs), row.n) for s in SCORERS]
            print(f"| {row.key.label} | {row.n} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
