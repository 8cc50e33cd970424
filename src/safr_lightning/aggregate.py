"""The ablation table of a sweep: ``python -m safr_lightning.aggregate [SWEEP_DIR] [--k 30]``.

Reads every ``results.json`` under SWEEP_DIR (default: the newest sweep under ``multirun/``) and
writes, in SWEEP_DIR, per dataset: ``ablation_<dataset>.md`` and ``.csv`` (one row per configuration
in Table 6's order, mean ± std over seeds, the paper's value beside each, then the missing and
failed jobs) and ``deletion_<dataset>.png`` / ``.svg`` (the paper's Figure 3). Only reads results
and replaces its own outputs atomically, so it is safe to run while a sweep is still going.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, NoReturn

from safr_lightning.cli import run_main
from safr_lightning.errors import SAFRError
from safr_lightning.files import remove_stale_temporaries, write_text_atomic
from safr_lightning.plots.style import save_figure
from safr_lightning.rundir import check_writable
from safr_lightning.sweep.figure import deletion_figure
from safr_lightning.sweep.jobs import FAILED, MISSING, OK, OTHER_LAUNCH, Job, collect_jobs, newest_sweep, plural
from safr_lightning.sweep.paper_tables import PAPER_K
from safr_lightning.sweep.table import csv_text, datasets_of, markdown, other_launches, problems, summarize

DEFAULT_BASE = Path("multirun")


def resolve_sweep_dir(arg: str | None, base: Path = DEFAULT_BASE) -> Path:
    if arg:
        path = Path(arg)
        if not path.is_dir():
            raise SAFRError(f"SWEEP_DIR={arg!r} is not a directory; pass the folder a multirun wrote")
        return path
    newest = newest_sweep(base)
    if newest is None:
        raise SAFRError(f"no sweep found under {base}/ (no multirun.yaml); pass SWEEP_DIR")
    return newest


class Aggregation(NamedTuple):
    jobs: list[Job]
    written: list[Path]
    notes: list[str]


def aggregate(sweep_dir: Path, k: float = PAPER_K, figures: bool = True) -> Aggregation:
    """Write the tables (and figures) of every dataset in ``sweep_dir``."""
    if not 0 < k < 100:
        raise SAFRError(f"--k={k:g} is not a deletion percentage; allowed: strictly between 0 and 100")
    remove_stale_temporaries(sweep_dir, recursive=False)  # of tables an aggregation killed mid-write left
    jobs = collect_jobs(sweep_dir)
    if not jobs:
        raise SAFRError(f"no results.json and no multirun.yaml under {sweep_dir}: nothing to aggregate")
    written: list[Path] = []
    notes: list[str] = []
    measured = sorted(
        {float(x) for j in jobs if j.status == OK for x in ((j.results or {}).get("test") or {}).get("ks") or []}
    )
    if measured and float(k) not in measured:
        levels = ", ".join(f"{x:g}" for x in measured)
        notes.append(f"no job measured k={k:g} (their srs.ks: {levels}): the deletion columns are empty")
    for dataset in datasets_of(jobs) or ["unknown"]:
        rows = summarize(jobs, dataset, k)
        table = markdown(dataset, rows, problems(jobs, dataset), k, sweep_dir, other_launches(jobs, dataset))
        # k = 30 (the paper's) keeps the plain name; another k never overwrites those tables.
        stem = f"ablation_{dataset}" + ("" if k == PAPER_K else f"_k{k:g}")
        written.append(write_text_atomic(sweep_dir / f"{stem}.md", table))
        written.append(write_text_atomic(sweep_dir / f"{stem}.csv", csv_text(dataset, rows, k)))
        fig = deletion_figure(dataset, rows) if figures else None
        if fig is not None:
            written.extend(save_figure(fig, sweep_dir / f"deletion_{dataset}", formats=("png", "svg")))
        elif figures:
            notes.append(f"{dataset}: no deletion accuracies (test.acc_capacity) in any results.json: no figure")
    return Aggregation(jobs, written, notes)


def _summary(jobs: Sequence[Job], root: Path) -> list[str]:
    others = [j for j in jobs if j.status == OTHER_LAUNCH]
    tabled = [j for j in jobs if j.status != OTHER_LAUNCH]
    counts = {s: sum(j.status == s for j in tabled) for s in (OK, FAILED, MISSING)}
    line = f"{plural(len(tabled), 'job')}: {counts[OK]} ok, {counts[FAILED]} failed, {counts[MISSING]} missing"
    if others:
        line += f"; {plural(len(others), 'run')} of an earlier launch with another config, not tabled"
    lines = [line]
    for job in jobs:
        if job.status != OK:
            lines.append(f"  {job.status}: {job.label(root)}: {job.reason}")
            if (command := job.rerun_command()) is not None:
                lines.append(f"    re-run (once the sweep has stopped): {command}")
    return lines


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one ``error:`` line and exit code 2, like every other CLI here."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m safr_lightning.aggregate", description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", nargs="?", help="a sweep folder (default: the newest under multirun/)")
    parser.add_argument("--k", type=float, default=PAPER_K, help="deletion level for the table, in %% (30)")
    parser.add_argument("--no-figures", action="store_true", help="tables only")
    args = parser.parse_args(argv)

    def body() -> int:
        sweep_dir = resolve_sweep_dir(args.sweep_dir)
        check_writable(sweep_dir, "the tables")
        result = aggregate(sweep_dir, k=args.k, figures=not args.no_figures)
        print("\n".join(_summary(result.jobs, sweep_dir) + result.notes))
        for path in result.written:
            print(f"wrote {path}")
        return 0

    # One line for bad input, a full disk (every file written so far is whole) or a signal.
    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
