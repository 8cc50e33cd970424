"""The paper's Figure 3 from a sweep: test accuracy against the share k of tokens deleted.

Solid lines delete the k% highest-capacity tokens, dashed lines the same number at random (the
reference); k = 0 is the untouched test set. Drawn for the Baseline, λ = (0, 0) (VMASK only) and the
SAFR row with the highest SRS, mean over seeds with a ±1 std band. The numbers are assembled here;
the drawing is :func:`safr_lightning.plots.deletion.draw_deletion`, the same as a single run's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from matplotlib.figure import Figure

from safr_lightning.plots.deletion import DeletionLine, draw_deletion
from safr_lightning.results import per_k, value_at_k
from safr_lightning.sweep.paper_tables import DATASET_TITLES
from safr_lightning.sweep.table import Row, Stat, mean_std


class Curve(NamedTuple):
    label: str
    ks: list[float]  # starts at 0 (no deletion)
    capacity: list[Stat]  # accuracy in %
    random: list[Stat]


def _ks(row: Row) -> list[float]:
    ks: set[float] = set()
    for job in row.runs:
        ks.update(per_k(((job.results or {}).get("test") or {}).get("acc_capacity")))
    return sorted(ks)


def deletion_curve(row: Row, label: str) -> Curve | None:
    """Mean ± std over seeds of the accuracy after capacity and random deletion, for every k recorded."""
    ks = _ks(row)
    if not ks:
        return None
    tests = [(job.results or {}).get("test") or {} for job in row.runs]
    start = mean_std(100.0 * t["acc"] if t.get("acc") is not None else None for t in tests)

    def at(name: str, k: float) -> Stat:
        values = (value_at_k(t.get(name), k) for t in tests)
        return mean_std(None if v is None else 100.0 * v for v in values)

    return Curve(
        label,
        [0.0, *ks],
        [start, *(at("acc_capacity", k) for k in ks)],
        [start, *(at("acc_random", k) for k in ks)],
    )


def figure_rows(rows: Sequence[Row]) -> list[tuple[Row, str]]:
    """Baseline, λ = (0, 0), and the SAFR row with the highest mean SRS (the figure's three models)."""
    chosen: list[tuple[Row, str]] = []
    plain = [r for r in rows if not r.key.variant]
    for row in plain:
        if (row.key.model, row.key.imp, row.key.inter) == ("baseline", 0.0, 0.0):
            chosen.append((row, "Baseline"))
    for row in plain:
        if (row.key.model, row.key.imp, row.key.inter) == ("safr", 0.0, 0.0):
            chosen.append((row, "λ_imp=0, λ_inter=0"))
    safr = [
        r
        for r in rows
        if r.key.model == "safr" and (r.key.imp, r.key.inter) != (0.0, 0.0) and r.stats["srs"].mean is not None
    ]
    if safr:
        best = max(safr, key=lambda r: r.stats["srs"].mean)  # first of equals in table order
        chosen.append((best, f"SAFR {best.key.label} (best SRS)"))
    return chosen


SERIES_COLORS = ("tab:gray", "tab:blue", "tab:red", "tab:green")


def deletion_figure(dataset: str, rows: Sequence[Row]) -> Figure | None:
    """Figure 3 for one dataset, or None when no run recorded deletion accuracies."""
    curves = [c for row, label in figure_rows(rows) if (c := deletion_curve(row, label)) is not None]
    if not curves:
        return None
    lines = [
        DeletionLine(
            f"{curve.label}, {suffix}",
            curve.ks,
            [s.mean for s in stats],
            [s.std for s in stats],
            dashed=dashed,
            color=color,
        )
        for curve, color in zip(curves, SERIES_COLORS, strict=False)
        for stats, dashed, suffix in ((curve.capacity, False, "by capacity"), (curve.random, True, "random"))
    ]
    return draw_deletion(lines, title=f"{DATASET_TITLES.get(dataset, dataset)}: accuracy as tokens are removed")
