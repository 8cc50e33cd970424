"""Figures of the paper (2–5) as pure functions: arrays and token strings in, a matplotlib Figure out.

Nothing here runs a model; :mod:`safr_lightning.analysis.allocation` computes the data and
:mod:`safr_lightning.analysis.figures` wires the two together. Figures are not registered with pyplot, so
they need no closing and are safe inside training callbacks.
"""

from safr_lightning.plots.deletion import (
    DeletionCurves,
    curves_from_metrics,
    curves_from_results,
    deletion_curve,
)
from safr_lightning.plots.groups import group_comparison
from safr_lightning.plots.layers import interference_grid, layer_heatmap
from safr_lightning.plots.style import save_figure, token_labels
from safr_lightning.plots.token_graph import strongest_pairs, token_graph

__all__ = [
    "DeletionCurves",
    "curves_from_metrics",
    "curves_from_results",
    "deletion_curve",
    "group_comparison",
    "interference_grid",
    "layer_heatmap",
    "save_figure",
    "strongest_pairs",
    "token_graph",
    "token_labels",
]
