"""The ablation table of a sweep: one row per configuration, mean ± std over seeds, the paper beside it.

Reads the ``test`` block of each ``results.json`` (DESIGN §8): ``acc`` and ``acc_capacity`` /
``acc_random`` are fractions (shown here in %), ``srs`` is already in percentage points. Pure
functions of the collected jobs; writing is in :mod:`safr_lightning.files`.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from safr_lightning.fidelity import EXACT, mode_of
from safr_lightning.results import value_at_k
from safr_lightning.sweep.jobs import FAILED, MISSING, OK, OTHER_LAUNCH, Job
from safr_lightning.sweep.paper_tables import (
    DATASET_TITLES,
    PAPER_K,
    TABLE6_ROWS,
    PaperRow,
    paper_position,
    paper_row,
)

METRICS = ("acc_s", "acc_random", "acc_capacity", "srs")
HEADERS = {"acc_s": "Acc_S", "acc_random": "Acc_S̃(r)", "acc_capacity": "Acc_S̃(k)", "srs": "SRS"}


class Stat(NamedTuple):
    """Mean and sample standard deviation (n − 1) of the values a column has; std is None for n < 2."""

    mean: float | None
    std: float | None
    n: int


def mean_std(values: Iterable[float | None]) -> Stat:
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return Stat(None, None, 0)
    std = statistics.stdev(finite) if len(finite) > 1 else None
    return Stat(statistics.fmean(finite), std, len(finite))


class RowKey(NamedTuple):
    model: str
    imp: float
    inter: float
    variant: tuple[str, ...] = ()
    # results.json's fidelity mode: exact- and paper-mode runs never share a row.
    fidelity: str = EXACT

    @property
    def label(self) -> str:
        lam = f"λ_imp={self.imp:g}, λ_inter={self.inter:g}"
        if self.model == "baseline":
            text = "Baseline" if self.imp == 0 and self.inter == 0 else f"Baseline, {lam}"
        else:
            text = lam if self.model == "safr" else f"{self.model}, {lam}"
        if self.fidelity != EXACT:
            text = f"{text} · fidelity: {self.fidelity}"
        return f"{text} [{', '.join(self.variant)}]" if self.variant else text

    def sort_key(self) -> tuple[Any, ...]:
        position = paper_position(self.model, self.imp, self.inter)
        # Exact mode first, then each other fidelity; within one, Table 6's rows in its order, then
        # every other configuration.
        return (
            self.fidelity != EXACT,
            self.fidelity,
            len(TABLE6_ROWS) if position is None else position,
            self.model,
            self.imp,
            self.inter,
            self.variant,
        )


def row_key(job: Job) -> RowKey | None:
    results = job.results or {}
    lam = results.get("lambda") or {}
    if "model" not in results or "imp" not in lam or "inter" not in lam:
        return None
    return RowKey(str(results["model"]), float(lam["imp"]), float(lam["inter"]), job.variant, mode_of(results))


def _percent(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def run_metrics(results: dict[str, Any], k: float) -> dict[str, float | None]:
    """Table 6's four numbers for one run at deletion level k: accuracies in %, SRS in points."""
    test = results.get("test") or {}
    acc = test.get("acc")
    return {
        "acc_s": _percent(None if acc is None else float(acc)),
        "acc_random": _percent(value_at_k(test.get("acc_random"), k)),
        "acc_capacity": _percent(value_at_k(test.get("acc_capacity"), k)),
        "srs": value_at_k(test.get("srs"), k),
    }


@dataclass
class Row:
    key: RowKey
    runs: list[Job] = field(default_factory=list)  # status ok
    failed: int = 0
    stats: dict[str, Stat] = field(default_factory=dict)
    paper: PaperRow | None = None

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def seeds(self) -> list[int]:
        return sorted(int(job.results["seed"]) for job in self.runs if job.results and "seed" in job.results)


def summarize(jobs: Sequence[Job], dataset: str, k: float) -> list[Row]:
    """One row per configuration of ``dataset`` that has a results.json, in Table 6's order."""
    rows: dict[RowKey, Row] = {}
    for job in jobs:
        if job.dataset != dataset or job.status not in (OK, FAILED):
            continue
        key = row_key(job)
        if key is None:
            continue
        row = rows.setdefault(key, Row(key))
        if job.status == OK:
            row.runs.append(job)
        else:
            row.failed += 1
    for row in rows.values():
        per_run = [run_metrics(job.results or {}, k) for job in row.runs]
        row.stats = {m: mean_std(r[m] for r in per_run) for m in METRICS}
        if not row.key.variant:
            row.paper = paper_row(dataset, row.key.model, row.key.imp, row.key.inter)
    return sorted(rows.values(), key=lambda r: r.key.sort_key())


def problems(jobs: Sequence[Job], dataset: str) -> list[Job]:
    """Failed and missing jobs of ``dataset`` (and those whose dataset nobody can tell)."""
    return [j for j in jobs if j.status in (FAILED, MISSING) and j.dataset in (dataset, None)]


def other_launches(jobs: Sequence[Job], dataset: str) -> list[Job]:
    """Runs in the folder that its launch did not ask for (an earlier launch's, another config)."""
    return [j for j in jobs if j.status == OTHER_LAUNCH and j.dataset in (dataset, None)]


def fmt_stat(stat: Stat, n: int) -> str:
    if stat.mean is None:
        return "–"
    text = f"{stat.mean:.2f}" if stat.std is None else f"{stat.mean:.2f} ± {stat.std:.2f}"
    return text if stat.n == n else f"{text} (n={stat.n})"


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def markdown(
    dataset: str, rows: Sequence[Row], bad: Sequence[Job], k: float, root: Path, others: Sequence[Job] = ()
) -> str:
    """The table for ``dataset`` with the jobs that did not finish; ``root`` is the sweep folder.

    ``others``: runs of an earlier launch into the folder (another config), listed below, not tabled.
    """
    title = DATASET_TITLES.get(dataset, dataset)
    with_paper = any(row.paper is not None for row in rows)
    k_text = f"{k:g}"
    lines = [
        f"# Ablation on {title} (`{dataset}`)",
        "",
        f"From `{root}`. Test accuracy (%) on the full test set (Acc_S), after deleting {k_text}% of each "
        f"text's tokens at random (Acc_S̃(r)) and by capacity (Acc_S̃(k)), and SRS = Acc_S − Acc_S̃(k) in "
        "percentage points; mean ± sample std over n seeds (failed runs are not counted in n).",
    ]
    if with_paper:
        lines.append(
            f"*paper*: Table 6 of Chang, Deng & Chen (2025), k = {PAPER_K:g}. In exact mode its λ are not "
            "numerically ours (padding never enters our regularizers): compare the trends across rows. Rows "
            "marked `fidelity: paper` run the paper's own code path (padding included) and compare directly."
        )
    header = ["Model", "n"]
    for metric in METRICS:
        header += [HEADERS[metric], "*paper*"] if with_paper else [HEADERS[metric]]
    header.append("failed")
    lines += [
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    for row in rows:
        cells = [row.key.label, str(row.n)]
        for metric in METRICS:
            cells.append(fmt_stat(row.stats[metric], row.n))
            if with_paper:
                cells.append(_fmt(getattr(row.paper, metric)) if row.paper is not None else "")
        cells.append(str(row.failed) if row.failed else "")
        lines.append("| " + " | ".join(cells) + " |")
    if not rows:
        lines.append("| *no results yet* |" + " |" * (len(header) - 1))
    lines += ["", f"## Missing or failed jobs ({len(bad)})", ""]
    if not bad:
        lines.append("None.")
    for job in bad:
        overrides = " ".join(job.overrides)
        where = f"`{job.label(root)}`" + (f" (`{overrides}`)" if overrides and job.dir is None else "")
        lines.append(f"- **{job.status}** {where}: {job.reason}")
        if (command := job.rerun_command()) is not None:
            lines.append(f"  re-run (once the sweep has stopped): `{command}`")
    if others:
        lines += ["", f"## Runs of an earlier launch into this folder, not tabled ({len(others)})", ""]
        lines += [f"- `{job.label(root)}`: {job.reason}" for job in others]
    return "\n".join(lines) + "\n"


CSV_COLUMNS = (
    "dataset", "row", "model", "lambda_imp", "lambda_inter", "fidelity", "variant", "k", "n", "failed", "seeds",
    "acc_s_mean", "acc_s_std", "acc_random_mean", "acc_random_std", "acc_capacity_mean",
    "acc_capacity_std", "srs_mean", "srs_std",
    "paper_acc_s", "paper_acc_random", "paper_acc_capacity", "paper_srs",
)  # fmt: skip


def csv_text(dataset: str, rows: Sequence[Row], k: float) -> str:
    """The table as CSV: full precision, empty cells where there is no value."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        record: dict[str, Any] = {
            "dataset": dataset,
            "row": row.key.label,
            "model": row.key.model,
            "lambda_imp": row.key.imp,
            "lambda_inter": row.key.inter,
            "fidelity": row.key.fidelity,
            "variant": " ".join(row.key.variant),
            "k": f"{k:g}",
            "n": row.n,
            "failed": row.failed,
            "seeds": " ".join(str(s) for s in row.seeds),
        }
        for metric in METRICS:
            stat = row.stats[metric]
            record[f"{metric}_mean"] = "" if stat.mean is None else repr(stat.mean)
            record[f"{metric}_std"] = "" if stat.std is None else repr(stat.std)
            record[f"paper_{metric}"] = "" if row.paper is None else getattr(row.paper, metric)
        writer.writerow(record)
    return out.getvalue()


def datasets_of(jobs: Sequence[Job]) -> list[str]:
    return sorted({job.dataset for job in jobs if job.dataset is not None})
