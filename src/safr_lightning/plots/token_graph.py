"""Figure 2b: one text as a graph: tokens sized by capacity, the strongest interferences as lines."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize, to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from safr_lightning.plots.style import NEGATIVE, POSITIVE, UNKNOWN_COLOR, new_figure, token_labels

CAPACITY_CMAP = "viridis"
SIZE_MIN, SIZE_RANGE = 50.0, 1300.0  # marker area (points²) of capacity 0 and the text's largest


def strongest_pairs(interference: np.ndarray, top_n: int, keep: np.ndarray | None = None) -> list[tuple]:
    """The ``top_n`` pairs i < j with the largest |interference| (among ``keep`` tokens), strongest first.

    ``interference`` [n, n]; returns ``(i, j, value)`` tuples. Ties keep reading order.
    """
    n = interference.shape[0]
    i, j = np.triu_indices(n, k=1)
    if keep is not None:
        ok = keep[i] & keep[j]
        i, j = i[ok], j[ok]
    values = interference[i, j]
    order = np.argsort(-np.abs(values), kind="stable")[: max(top_n, 0)]
    return [(int(i[o]), int(j[o]), float(values[o])) for o in order if values[o] != 0]


def token_graph(
    capacity: np.ndarray,
    interference: np.ndarray,
    words: Sequence[str],
    unknown: Sequence[bool] | None = None,
    *,
    top_n: int = 15,
    max_tokens: int = 60,
    title: str = "Token graph",
    capacity_label: str = "capacity",
    interference_label: str = "interference",
) -> Figure:
    """Tokens on a circle in reading order (clockwise from the top), circle area ∝ capacity.

    Args:
        capacity: C_i of each token, [n], in [0, 1].
        interference: [n, n]; the ``top_n`` pairs with the largest |I_ij| are drawn, red when
            positive, blue when negative, line width ∝ |I_ij| (relative to the strongest drawn).
        words: the tokens as written; ``unknown`` marks words outside the vocabulary (grey, ``?``).
        max_tokens: longer texts show only their ``max_tokens`` highest-capacity tokens (still in
            reading order), so labels never overlap into a blur.
    """
    capacity = np.asarray(capacity, dtype=float)
    interference = np.asarray(interference, dtype=float)
    n = len(words)
    if capacity.shape != (n,) or interference.shape != (n, n):
        raise ValueError(f"capacity {capacity.shape} and interference {interference.shape} need {n} tokens")
    unknown = list(unknown) if unknown is not None else [False] * n
    shown = np.ones(n, dtype=bool)
    if n > max_tokens:
        shown[:] = False
        shown[np.argsort(-capacity, kind="stable")[:max_tokens]] = True
    index = np.flatnonzero(shown)
    labels = token_labels([words[k] for k in index], [unknown[k] for k in index])
    angles = np.pi / 2 - 2 * np.pi * np.arange(len(index)) / max(len(index), 1)
    xy = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    where = {int(k): p for p, k in enumerate(index)}

    fig = new_figure(9.5, 8.0)
    ax = fig.add_subplot()
    pairs = strongest_pairs(interference, top_n, keep=shown)
    if pairs:
        strength = np.array([abs(v) for _, _, v in pairs])
        widths = 0.8 + 5.2 * strength / strength.max()
        segments = [[xy[where[i]], xy[where[j]]] for i, j, _ in pairs]
        colors = [POSITIVE if v > 0 else NEGATIVE for _, _, v in pairs]
        alphas = 0.35 + 0.55 * strength / strength.max()
        rgba = [to_rgba(c, alpha=a) for c, a in zip(colors, alphas, strict=True)]
        ax.add_collection(LineCollection(segments, colors=rgba, linewidths=widths, zorder=1))

    # Sizes and colours span this text's capacities (a layer's capacities can all be small), the
    # colour bar keeps the absolute values.
    top = max(float(capacity[index].max()), 1e-12)
    sizes = SIZE_MIN + SIZE_RANGE * np.clip(capacity[index], 0, None) / top
    dots = ax.scatter(
        xy[:, 0], xy[:, 1], s=sizes, c=capacity[index], cmap=CAPACITY_CMAP, norm=Normalize(0.0, top),
        edgecolors="black", linewidths=0.6, zorder=2,
    )  # fmt: skip
    for (x, y), label, k, size in zip(xy, labels, index, sizes, strict=True):
        # Offset in points from the circle's edge, so that a label never covers its own circle.
        gap = np.sqrt(size) / 2 + 4
        ax.annotate(
            label, (x, y), xytext=(x * gap, y * gap), textcoords="offset points", va="center",
            ha="left" if x > 0.2 else "right" if x < -0.2 else "center",
            fontsize=10 if len(index) <= 30 else 8,
            color=UNKNOWN_COLOR if unknown[k] else "black", style="italic" if unknown[k] else "normal",
        )  # fmt: skip
    ax.set_xlim(-1.6, 1.6)
    ax.set_ylim(-1.22, 1.22)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.colorbar(dots, ax=ax, shrink=0.6, pad=0.01, label=capacity_label)

    handles = [
        Line2D([], [], color=POSITIVE, lw=3, label=f"positive {interference_label}"),
        Line2D([], [], color=NEGATIVE, lw=3, label=f"negative {interference_label}"),
    ]
    handles += [
        Line2D([], [], ls="", marker="o", markersize=np.sqrt(SIZE_MIN + SIZE_RANGE * c / top),
               markerfacecolor="white", markeredgecolor="black", label=f"capacity {c:.2g}")
        for c in (top / 2, top)
    ]  # fmt: skip
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=9, frameon=False,
               columnspacing=1.2, handlelength=4.5, handletextpad=0.5)  # fmt: skip
    notes = [
        f"circle area ∝ {capacity_label}",
        f"lines: the {len(pairs)} strongest pairs, width ∝ |{interference_label}|",
    ]
    if n > max_tokens:
        notes.append(f"{max_tokens} of {n} tokens (highest capacity)")
    if any(unknown):
        notes.append("grey '?' = unknown word")
    fig.suptitle("\n".join(_wrap(title)), fontsize=11)
    ax.set_title("\n".join(_wrap("; ".join(notes), width=110, lines=2)), fontsize=9)
    return fig


def _wrap(title: str, width: int = 100, lines: int = 3) -> list[str]:
    wrapped = textwrap.wrap(title, width) or [""]
    if len(wrapped) > lines:
        wrapped = [*wrapped[: lines - 1], wrapped[lines - 1][: width - 1] + "…"]
    return wrapped
