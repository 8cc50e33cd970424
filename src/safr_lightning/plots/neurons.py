"""FC1 neuron polysemy: clusters per neuron (histogram) and a few neurons' clusters with example tokens."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from safr_lightning.plots.style import new_figure

# Bars: 1, 2, 3-4, 5-8, ... (doubling), the last open-ended.
EDGES = (1, 2, 3, 5, 9, 17, 33)
SERIES = ("#7f7f7f", "#2471a3", "#c0392b", "#27ae60", "#8e44ad")


def _shares(clusters: np.ndarray) -> np.ndarray:
    """Share of neurons in each bin of :data:`EDGES` [len(EDGES)]."""
    counts = np.bincount(np.searchsorted(EDGES, clusters, side="right") - 1, minlength=len(EDGES))
    return counts[: len(EDGES)] / max(1, len(clusters))


def _bin_labels() -> list[str]:
    spans = [(a, b - 1) for a, b in itertools.pairwise(EDGES)]
    return [str(a) if a == b else f"{a}-{b}" for a, b in spans] + [f"{EDGES[-1]}+"]


def cluster_histogram(series: Mapping[str, np.ndarray], title: str, colors: Sequence[str] | None = None) -> Figure:
    """Grouped bars: per series (a model, or a group of one model's neurons), the share of its live
    neurons with 1, 2, ... feature clusters. ``series``: label -> cluster counts [n] (live neurons only);
    ``colors``: one per series (default: the house palette in order)."""
    fig = new_figure(7.2, 4.0)
    ax = fig.add_subplot()
    n = max(1, len(series))
    width = 0.8 / n
    x = np.arange(len(EDGES))
    for i, ((label, clusters), color) in enumerate(zip(series.items(), colors or SERIES * 3, strict=False)):
        mean = f"mean {clusters.mean():.2f}" if len(clusters) else "no live neuron"
        ax.bar(x + (i - (n - 1) / 2) * width, 100 * _shares(clusters), width, color=color,
               label=f"{label} ({len(clusters)} neurons, {mean})")  # fmt: skip
    ax.set_xticks(x, _bin_labels())
    ax.set_xlabel("feature clusters per FC1 neuron (1 = monosemantic)")
    ax.set_ylabel("share of live neurons (%)")
    ax.set_title(title, fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


@dataclass
class NeuronView:
    """One neuron for the examples figure: its clusters, each with example contexts (strongest first)."""

    neuron: int
    note: str  # e.g. "important-token neuron, 3 clusters, monosemanticity 0.61"
    clusters: Sequence[Sequence[str]]  # per cluster: "... left [token] right ..." strings


def neuron_examples(neurons: Sequence[NeuronView], title: str, per_cluster: int = 3, max_clusters: int = 4) -> Figure:
    """A text panel per neuron: each feature cluster with its strongest examples in context."""
    lines: list[tuple[str, dict[str, object]]] = []
    for view in neurons:
        lines.append((f"neuron {view.neuron}: {view.note}", {"weight": "bold", "fontsize": 9}))
        for c, examples in enumerate(view.clusters[:max_clusters]):
            for i, text in enumerate(examples[:per_cluster]):
                lead = f"  cluster {c + 1} ({len(examples)})  " if i == 0 else " " * (14 + len(str(len(examples))))
                lines.append((lead + text, {"fontsize": 8, "family": "monospace", "color": SERIES[1 + c % 4]}))
        if len(view.clusters) > max_clusters:
            lines.append((f"  ... {len(view.clusters) - max_clusters} more clusters", {"fontsize": 8}))
        lines.append(("", {}))
    fig = new_figure(9.0, 0.6 + 0.19 * len(lines))
    ax = fig.add_subplot()
    ax.axis("off")
    ax.set_title(title, fontsize=11, loc="left")
    step = 1.0 / max(1, len(lines))
    for i, (text, style) in enumerate(lines):
        ax.text(0.0, 1.0 - i * step, text, va="top", ha="left", transform=ax.transAxes, **style)  # type: ignore[arg-type]
    return fig
