"""Figures of the toy model of superposition: arrays in, a matplotlib Figure out (nothing trains here).

- :func:`phase_diagram`: heatmaps over sparsity × importance decay, one column per λ;
- :func:`feature_bars`: per-feature capacity against feature index at a few sparsities (Elhage et
  al.'s plot), one row per λ;
- :func:`tradeoff`: what the penalty changes, model by model: reconstruction loss against the
  importance-weighted capacity, relative to the same model trained without it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from safr_lightning.plots.style import new_figure

DEDICATED_COLOR = "#2471a3"
SHARED_COLOR = "#aed6f1"
NORM_COLOR = "#c0392b"


def _label(value: float) -> str:
    return f"{value:g}"


def phase_diagram(
    panels: dict[str, np.ndarray],
    sparsities: Sequence[float],
    decays: Sequence[float],
    penalties: Sequence[float],
    limits: dict[str, tuple[float, float]] | None = None,
) -> Figure:
    """One heatmap row per entry of ``panels`` (title -> array [L, D, S]: λ × decay × sparsity).

    Columns are the λ values (λ = 0 first: no penalty); every panel of a row shares its colour
    scale (``limits[title]``, else the row's range), and each cell is annotated with its value.
    """
    rows, cols = len(panels), len(penalties)
    panel_width = max(2.4, 0.5 * len(sparsities) + 0.8)
    panel_height = max(1.9, 0.35 * len(decays) + 1.3)  # two title lines and the tick labels
    fig = new_figure(1.2 + panel_width * cols, 0.3 + panel_height * rows)
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False))
    for r, (title, values) in enumerate(panels.items()):
        values = np.asarray(values, dtype=float)
        low, high = (limits or {}).get(title, (float(np.nanmin(values)), float(np.nanmax(values))))
        image = None
        for c, lam in enumerate(penalties):
            ax = axes[r, c]
            image = ax.imshow(values[c], cmap="viridis", vmin=low, vmax=high, aspect="auto", origin="lower")
            for (d, s), v in np.ndenumerate(values[c]):
                dark = (v - low) < 0.6 * (high - low) if high > low else True
                text = f"{v:.2g}" if abs(v) >= 0.005 else "0"
                ax.text(s, d, text, ha="center", va="center", fontsize=6, color="white" if dark else "black")
            ax.set_xticks(range(len(sparsities)), [_label(s) for s in sparsities], rotation=90, fontsize=7)
            ax.set_yticks(range(len(decays)), [_label(d) for d in decays], fontsize=7)
            ax.set_title(f"{title}\nλ = {_label(lam)}" + (" (no penalty)" if lam == 0 else ""), fontsize=8)
            if r == rows - 1:
                ax.set_xlabel("sparsity S", fontsize=8)
            if c == 0:
                ax.set_ylabel("importance decay", fontsize=8)
        if image is not None:
            fig.colorbar(image, ax=list(axes[r]), shrink=0.9, pad=0.01)
    return fig


def feature_bars(
    capacity: np.ndarray,
    norm: np.ndarray,
    dedicated: np.ndarray,
    sparsities: Sequence[float],
    penalties: Sequence[float],
    decay: float,
    note: str = "",
) -> Figure:
    """Per-feature capacity bars: arrays [L, B, n] (λ × the chosen sparsities × feature).

    A dark bar is a feature with a dedicated dimension, a light one a feature in superposition (or
    not represented); the red dot is ``‖W_i‖``.
    """
    capacity, norm, dedicated = (np.asarray(a) for a in (capacity, norm, dedicated))
    n_pen, n_sp, n = capacity.shape
    fig = new_figure(1.0 + 2.6 * n_sp, 0.6 + 1.9 * n_pen)
    axes = np.asarray(fig.subplots(n_pen, n_sp, squeeze=False, sharex=True, sharey=True))
    index = np.arange(n)
    for p in range(n_pen):
        for s in range(n_sp):
            ax = axes[p, s]
            colors = [DEDICATED_COLOR if d else SHARED_COLOR for d in dedicated[p, s]]
            ax.bar(index, capacity[p, s], color=colors, width=0.8)
            ax.plot(index, norm[p, s], "o", color=NORM_COLOR, markersize=2.5)
            ax.set_ylim(0, 1.15)
            ax.set_title(f"S = {_label(sparsities[s])}, λ = {_label(penalties[p])}", fontsize=8)
            ax.tick_params(labelsize=7)
            if p == n_pen - 1:
                ax.set_xlabel("feature i (importance decreasing)", fontsize=8)
            if s == 0:
                ax.set_ylabel("capacity C_i  (dot: ‖W_i‖)", fontsize=8)
    fig.suptitle(f"Per-feature capacity, importance decay {_label(decay)}{note}", fontsize=9)
    return fig


def tradeoff(
    recon_change: np.ndarray,
    capacity_change: np.ndarray,
    sparsity: np.ndarray,
    penalties: Sequence[float],
    tolerance: float,
    note: str = "",
) -> Figure:
    """The penalty's effect per model: x = relative change of the reconstruction loss, y = change of
    the importance-weighted capacity, both against the same cell trained with λ = 0.

    Arrays [L, N] (λ > 0 × cells); ``sparsity`` [N] colours the points. The grey band is
    ``|x| ≤ tolerance``: equal reconstruction loss. Points above 0 in the band support the claim.
    """
    recon_change, capacity_change, sparsity = (
        np.asarray(a, dtype=float) for a in (recon_change, capacity_change, sparsity)
    )
    fig = new_figure(0.8 + 3.2 * len(penalties), 3.2)
    axes = np.asarray(fig.subplots(1, len(penalties), squeeze=False, sharey=True))[0]
    colour = -np.log10(np.clip(1 - sparsity, 1e-6, None))  # 0 at S = 0, 3 at S = 0.999
    points = None
    for p, lam in enumerate(penalties):
        ax = axes[p]
        ax.axvspan(-tolerance, tolerance, color="0.9", zorder=0)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.axvline(0, color="0.5", lw=0.8)
        points = ax.scatter(recon_change[p], capacity_change[p], c=colour, cmap="plasma", s=12, vmin=0)
        ax.set_title(f"λ = {_label(lam)} against λ = 0{note}", fontsize=9)
        ax.set_xlabel("relative change of reconstruction loss", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("change of Σ I_i C_i / Σ I_i", fontsize=8)
    if points is not None:
        bar = fig.colorbar(points, ax=list(axes), pad=0.01)
        bar.set_label("-log10(1 - S)", fontsize=8)
    return fig
