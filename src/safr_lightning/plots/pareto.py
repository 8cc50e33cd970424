"""The accuracy-SRS plane of a λ search: every trial, the re-tested front, the paper's grid, the Baseline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from safr_lightning.plots.style import new_figure


class Point(NamedTuple):
    label: str
    srs: float  # SRS@k, points
    acc: float  # accuracy, %
    srs_std: float | None = None
    acc_std: float | None = None


def draw_pareto(
    trials: Sequence[Point], front: Sequence[Point], grid: Sequence[Point], baseline: Point | None, title: str, k: float
) -> Figure:
    """Trials (one seed each) as grey dots; the front (mean ± std over seeds) as a line; grid as squares."""
    fig = new_figure(7.0, 5.0)
    ax = fig.add_subplot()
    if trials:
        ax.scatter(
            [p.srs for p in trials], [p.acc for p in trials], s=14, color="0.65", label="trials (1 seed)", zorder=1
        )
    if front:
        ordered = sorted(front, key=lambda p: p.srs)
        _with_bars(ax, ordered, "tab:red", "front, re-tested (mean ± std)", (4, 4), 7, marker="o", lw=1.5, zorder=3)
    if grid:
        _with_bars(ax, grid, "tab:blue", "Table 6 grid (mean ± std)", (4, -8), 6, fmt="s", ms=4, alpha=0.8, zorder=2)
    if baseline is not None:
        ax.scatter([baseline.srs], [baseline.acc], marker="*", s=160, color="black", label="Baseline", zorder=4)
    ax.set_xlabel(f"SRS@{k:g} (points, test)")
    ax.set_ylabel("accuracy (%, test)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig


def _with_bars(ax: Axes, points: Sequence[Point], color: str, label: str, offset: tuple[float, float], size: float,
               **style: object) -> None:  # fmt: skip
    """Means with ±std bars both ways, each point labelled."""
    ax.errorbar([p.srs for p in points], [p.acc for p in points], xerr=[p.srs_std or 0 for p in points],
                yerr=[p.acc_std or 0 for p in points], color=color, capsize=2, label=label, **style)  # fmt: skip
    for p in points:
        ax.annotate(p.label, (p.srs, p.acc), textcoords="offset points", xytext=offset, fontsize=size, color=color)
