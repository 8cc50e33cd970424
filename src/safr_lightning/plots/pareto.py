"""The accuracy-SRS plane of a λ search: every trial, the re-tested front, the paper's grid, the Baseline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from safr_lightning.plots.labels import Label, place_labels
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
        _with_bars(ax, ordered, "tab:red", "front, re-tested (mean ± std)", marker="o", lw=1.5, zorder=3)
    if grid:
        _with_bars(ax, grid, "tab:blue", "Table 6 grid (mean ± std)", fmt="s", ms=4, alpha=0.8, zorder=2)
    if baseline is not None:
        ax.scatter([baseline.srs], [baseline.acc], marker="*", s=160, color="black", label="Baseline", zorder=4)
    ax.set_xlabel(f"SRS@{k:g} (points, test)")
    ax.set_ylabel("accuracy (%, test)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    # The front's names first: where front and grid crowd together, the front keeps the nearer spots.
    labels = [Label(p.label, p.srs, p.acc, "tab:red", 7) for p in front]
    labels += [Label(p.label, p.srs, p.acc, "tab:blue", 6) for p in grid]
    place_labels(ax, labels, [(baseline.srs, baseline.acc)] if baseline is not None else [])
    return fig


def _with_bars(ax: Axes, points: Sequence[Point], color: str, label: str, **style: object) -> None:
    """Means with ±std bars both ways."""
    ax.errorbar([p.srs for p in points], [p.acc for p in points], xerr=[p.srs_std or 0 for p in points],
                yerr=[p.acc_std or 0 for p in points], color=color, capsize=2, label=label, **style)  # fmt: skip
