"""The paper's Figure 3 from a sweep: test accuracy against the share k of tokens deleted.

Solid lines delete the k% highest-capacity tokens, dashed lines the same number at random (the
reference); k = 0 is the untouched test set. Drawn for the Baseline, λ = (0, 0) (VMASK only) and the
SAFR row with the highest SRS, mean over seeds with a ±1 std band. Matplotlib's object API on the
Agg canvas: no pyplot state, no display needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from matplotlib.figure import Figure

from safr_lightning.sweep.paper_tables import DATASET_TITLES
from safr_lightning.sweep.table import Row, Stat, mean_std, value_at_k


class Curve(NamedTuple):
    label: str
    ks: list[float]  # starts at 0 (no deletion)
    capacity: list[Stat]  # accuracy in %
    random: list[Stat]


def _ks(row: Row) -> list[float]:
    ks: set[float] = set()
    for job in row.runs:
        by_k = ((job.results or {}).get("test") or {}).get("acc_capacity") or {}
        for key in by_k:
            try:
                ks.add(float(key))
            except ValueError:
                continue
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


def deletion_figure(dataset: str, rows: Sequence[Row]) -> Figure | None:
    """Figure 3 for one dataset, or None when no run recorded deletion accuracies."""
    curves = [c for row, label in figure_rows(rows) if (c := deletion_curve(row, label)) is not None]
    if not curves:
        return None
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    colors = ("tab:gray", "tab:blue", "tab:red", "tab:green")
    for curve, color in zip(curves, colors, strict=False):
        for stats, style, suffix in ((curve.capacity, "-", "by capacity"), (curve.random, "--", "random")):
            points = [(k, s) for k, s in zip(curve.ks, stats, strict=True) if s.mean is not None]
            if not points:
                continue
            xs = [k for k, _ in points]
            ys = [s.mean for _, s in points]
            ax.plot(xs, ys, style, marker="o", ms=3, color=color, label=f"{curve.label}, {suffix}")
            lo = [s.mean - (s.std or 0.0) for _, s in points]
            hi = [s.mean + (s.std or 0.0) for _, s in points]
            ax.fill_between(xs, lo, hi, color=color, alpha=0.12, linewidth=0)
    ax.set_xlabel("tokens deleted, k (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{DATASET_TITLES.get(dataset, dataset)}: accuracy as tokens are removed")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return fig
