"""Figures 2a and 2c: important tokens against the rest, attention-correlated pairs against the rest."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from safr_lightning.plots.style import new_figure

GROUP_COLORS = ("#d95f02", "#7570b3")  # the selected group, the rest


def group_comparison(
    panels: Sequence[tuple[str, str, np.ndarray, np.ndarray]],
    *,
    group_names: Sequence[tuple[str, str]] | None = None,
    totals: Sequence[tuple[int, int]] | None = None,
    legend: tuple[str, str] = ("selected group", "the rest"),
    title: str = "Important tokens vs the rest",
) -> Figure:
    """One box plot panel per statistic, each comparing a selected group with the rest.

    Args:
        panels: ``(panel title, y label, selected values, other values)`` per panel.
        group_names: per panel, the two x labels (default "important" / "rest").
        legend: the legend's names of the two colours.
        totals: per panel, how many values each group had before sampling (the x labels give the
            count, and the sample size when the values are a sample).

    Boxes show the quartiles, whiskers the 5th and 95th percentiles, the white diamond the mean.
    """
    fig = new_figure(4.2 * len(panels), 4.6)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for k, (panel_title, ylabel, selected, other) in enumerate(panels):
        groups = [np.asarray(selected, float), np.asarray(other, float)]
        names = group_names[k] if group_names else ("important", "rest")
        counts = totals[k] if totals else (len(groups[0]), len(groups[1]))
        labels = [_count_label(name, total, len(g)) for name, total, g in zip(names, counts, groups, strict=True)]
        _box(axes[k], groups, labels)
        axes[k].set_title(panel_title, fontsize=10)
        axes[k].set_ylabel(ylabel)
    mean_handle = Line2D([], [], ls="", marker="D", markerfacecolor="white", markeredgecolor="black",
                         label="mean (box: quartiles, whiskers: 5th–95th percentile)")  # fmt: skip
    box_handles = [
        Line2D([], [], color=GROUP_COLORS[0], lw=8, alpha=0.7, label=legend[0]),
        Line2D([], [], color=GROUP_COLORS[1], lw=8, alpha=0.7, label=legend[1]),
    ]
    fig.legend(handles=[*box_handles, mean_handle], loc="outside lower center", ncols=3, fontsize=9,
               frameon=False)  # fmt: skip
    fig.suptitle("\n".join(textwrap.wrap(title, int(fig.get_figwidth() * 11))), fontsize=11)
    return fig


def _count_label(name: str, total: int, sampled: int) -> str:
    if sampled < total:
        return f"{name}\n(n={total:,}; {sampled:,} sampled)"
    return f"{name}\n(n={total:,})"


def _box(ax: Axes, groups: list[np.ndarray], labels: Sequence[str]) -> None:
    data = [g if g.size else np.array([np.nan]) for g in groups]
    parts = ax.boxplot(
        data, tick_labels=labels, whis=(5, 95), showfliers=False, patch_artist=True, widths=0.55,
        medianprops={"color": "black"},
    )  # fmt: skip
    for patch, color in zip(parts["boxes"], GROUP_COLORS, strict=True):
        patch.set_facecolor(color)
        patch.set_alpha(0.7)
    means = [float(np.mean(g)) if g.size else np.nan for g in groups]
    ax.scatter([1, 2], means, marker="D", color="white", edgecolors="black", zorder=3, s=30)
    ax.grid(axis="y", alpha=0.3)
