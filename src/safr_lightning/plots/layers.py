"""Figures 4 and 5: one text across the layers: a value per token per layer, and interference matrices."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Colormap, TwoSlopeNorm
from matplotlib.figure import Figure

from safr_lightning.plots.style import mark_unknown, new_figure, token_labels

ROW_CMAP = "YlOrRd"
DIVERGING_CMAP = "RdBu_r"
ANNOTATE_MAX_TOKENS = 40


def layer_heatmap(
    rows: Mapping[str, np.ndarray],
    words: Sequence[str],
    unknown: Sequence[bool] | None = None,
    *,
    title: str = "Capacity across layers",
    colorbar_label: str = "capacity / keep probability / attention (0–1)",
) -> Figure:
    """One row per layer (``rows``: label → value per token [n], each in [0, 1]), tokens as columns.

    Every row shares one 0–1 colour scale, so a darker cell is a larger value whatever the layer;
    texts of up to 40 tokens also get each value written in its cell.
    """
    names = list(rows)
    n = len(words)
    values = np.stack([np.asarray(rows[name], dtype=float) for name in names])
    if values.shape != (len(names), n):
        raise ValueError(f"every row needs {n} values, got {values.shape}")
    fig = new_figure(min(max(8.0, 0.48 * n + 2.5), 30.0), 1.0 + 0.55 * len(names) + 1.2)
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap=ROW_CMAP, vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(names)), names)
    ax.set_xticks(range(n), token_labels(words, unknown), rotation=55, ha="right", rotation_mode="anchor")
    mark_unknown(ax.get_xticklabels(), unknown)
    ax.tick_params(axis="x", labelsize=9 if n <= 40 else 6)
    ax.set_xticks(np.arange(-0.5, n, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, len(names), 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.2)
    ax.tick_params(which="minor", length=0)
    if n <= ANNOTATE_MAX_TOKENS:
        for (r, c), v in np.ndenumerate(values):
            ax.text(c, r, _cell(v), ha="center", va="center", fontsize=7, color="white" if v > 0.6 else "black")
    fig.colorbar(image, ax=ax, pad=0.01, fraction=0.03, label=colorbar_label)
    ax.set_title("\n".join(textwrap.wrap(title, int(fig.get_figwidth() * 11))), fontsize=11)
    return fig


def _cell(value: float) -> str:
    """Two decimals without the leading zero (".42"), so that a cell stays narrow; 1 as "1.0"."""
    text = f"{value:.2f}"
    return text[1:] if text.startswith("0.") else f"{value:.1f}"


def interference_grid(
    matrices: Mapping[str, np.ndarray],
    words: Sequence[str],
    unknown: Sequence[bool] | None = None,
    *,
    title: str = "Interference across layers",
    columns: int = 3,
) -> Figure:
    """Small multiples of [n, n] matrices (``matrices``: panel title → matrix), one colour bar each.

    A diverging colour map centred at 0 (red positive, blue negative). The diagonal, a token's
    interference with itself (its squared norm), is drawn grey and left out of the colour scale so
    that the pairs between tokens, which the figure is about, use the whole range.
    """
    names = list(matrices)
    n = len(words)
    columns = max(1, min(columns, len(names)))
    rows = math.ceil(len(names) / columns)
    side = min(max(3.6, 0.17 * n + 1.6), 9.0)
    fig = new_figure(columns * (side + 0.9), rows * (side + 0.35) + 0.7)
    labels = token_labels(words, unknown)
    off_diagonal = ~np.eye(n, dtype=bool)
    for k, name in enumerate(names):
        matrix = np.asarray(matrices[name], dtype=float)
        if matrix.shape != (n, n):
            raise ValueError(f"{name}: matrix {matrix.shape} needs shape ({n}, {n})")
        ax = fig.add_subplot(rows, columns, k + 1)
        scale = float(np.abs(matrix[off_diagonal]).max()) if n > 1 else 0.0
        scale = scale if scale > 0 else 1.0
        shown = np.ma.masked_array(matrix, mask=~off_diagonal)
        cmap = _with_grey_bad(DIVERGING_CMAP)
        image = ax.imshow(shown, cmap=cmap, norm=TwoSlopeNorm(0.0, -scale, scale), interpolation="nearest")
        step = 1 if n <= 40 else math.ceil(n / 40)
        fontsize = 8 if n <= 30 else 7 if n <= 40 else 5
        ticks = list(range(0, n, step))
        # Small multiples share their axes: tokens are named on the left column and the bottom row.
        left, bottom = k % columns == 0, k + columns >= len(names)
        ax.set_xticks(ticks, [labels[t] for t in ticks] if bottom else [], rotation=90, fontsize=fontsize)
        ax.set_yticks(ticks, [labels[t] for t in ticks] if left else [], fontsize=fontsize)
        if unknown is not None:
            shown_unknown = [unknown[t] for t in ticks]
            mark_unknown(ax.get_xticklabels(), shown_unknown)
            mark_unknown(ax.get_yticklabels(), shown_unknown)
        ax.set_title(name, fontsize=10)
        bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
        bar.ax.tick_params(labelsize=7)
        bar.formatter.set_powerlimits((-2, 3))
    fig.suptitle("\n".join(textwrap.wrap(title, int(fig.get_figwidth() * 10))), fontsize=12)
    return fig


def _with_grey_bad(name: str) -> Colormap:
    return colormaps[name].with_extremes(bad="#d9d9d9")
