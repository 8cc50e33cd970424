"""The figures a model gets: per text (Figures 2b, 4, 5), per dataset split (2a/2c), per run (3).

Glue between :mod:`safr_lightning.analysis.allocation` (numbers) and :mod:`safr_lightning.plots`
(drawings), shared by ``explain`` and the test-end callback so both draw exactly the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from safr_lightning.analysis.allocation import LAYER_TITLES, GroupStatistics, TextProfile
from safr_lightning.plots import (
    DeletionCurves,
    deletion_curve,
    group_comparison,
    interference_grid,
    layer_heatmap,
    save_figure,
    token_graph,
)

TEXT_FIGURES = ("token_graph", "layer_capacity", "layer_interference")
BINARY_LABELS = ("negative", "positive")  # DESIGN §2: 0 negative, 1 positive


def label_names(module: Any) -> list[str]:
    """Display names of the classes: negative/positive for the binary sentiment tasks, else ``label k``."""
    run_config = getattr(module, "hparams", {}).get("run_config") or {}
    num_classes = int(getattr(module, "hparams", {}).get("num_classes", 2))
    dataset = (run_config.get("dataset") or {}).get("name")
    if num_classes == 2 and dataset in ("sst2", "imdb", "synthetic"):
        return list(BINARY_LABELS)
    return [f"label {k}" for k in range(num_classes)]


def run_label(module: Any) -> str:
    """``sst2, safr, λ_imp=0.1, λ_inter=0.1, seed 0`` from the checkpoint's run config ("" without one)."""
    run_config = getattr(module, "hparams", {}).get("run_config") or {}
    try:
        lam = run_config["lambda"]
        return (
            f"{run_config['dataset']['name']}, {run_config['model']['name']}, "
            f"λ_imp={lam['imp']:g}, λ_inter={lam['inter']:g}, seed {run_config['seed']}"
        )
    except (KeyError, TypeError):
        return ""


def shorten(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def prediction_line(profile: TextProfile, labels: Sequence[str]) -> str:
    k = profile.prediction
    name = labels[k] if k < len(labels) else f"label {k}"
    return f"{name} (label {k}), p = {profile.probs[k]:.3f}"


def text_figures(
    profile: TextProfile,
    labels: Sequence[str],
    *,
    top_pairs: int = 15,
    max_tokens: int = 60,
    vmask: bool = True,
) -> dict[str, Figure]:
    """The token graph, the capacity-across-layers heatmap and the interference grid of one text."""
    words, unknown = profile.tokens.words, profile.tokens.unknown
    head = f"“{shorten(profile.text, 160)}”  →  {prediction_line(profile, labels)}"
    layer = LAYER_TITLES.get(profile.graph_layer, profile.graph_layer)
    figures = {
        "token_graph": token_graph(
            profile.capacity[profile.graph_layer],
            profile.graph_interference,
            words,
            unknown,
            top_n=top_pairs,
            max_tokens=max_tokens,
            title=f"{layer} token graph: {head}",
            capacity_label=f"{layer} capacity",
            interference_label=("centred " if profile.graph_centred else "") + f"{layer} interference",
        )
    }
    received = profile.attention_received
    rows: dict[str, np.ndarray] = {"embedding capacity": profile.capacity["embedding"]}
    if vmask:
        rows["VMASK keep probability"] = profile.keep
    rows["attention received (÷ max)"] = received / received.max() if received.max() > 0 else received
    for name in ("attn_out", "fc1", "fc2"):
        rows[f"{LAYER_TITLES[name]} capacity"] = profile.capacity[name]
    figures["layer_capacity"] = layer_heatmap(rows, words, unknown, title=f"Across layers: {head}")
    panels = {"embedding": profile.interference["embedding"]}
    if vmask:
        panels["VMASK"] = profile.interference["vmask"]
    panels["attention weights (head mean)"] = profile.interference["attention"]
    for name in ("attn_out", "fc1", "fc2"):
        panels[LAYER_TITLES[name]] = profile.interference[name]
    figures["layer_interference"] = interference_grid(
        panels, words, unknown, title=f"Interference across layers (diagonal grey): {head}"
    )
    return figures


def group_figure(stats: GroupStatistics, where: str = "") -> Figure:
    """Figures 2a/2c: capacity and polysemanticity of important tokens, interference of correlated pairs."""
    layer = LAYER_TITLES.get(stats.layer, stats.layer)
    pct = f"{stats.k:g}%"
    c = stats.counts
    return group_comparison(
        [
            (f"{layer} capacity", "capacity", stats.capacity_important, stats.capacity_rest),
            (
                f"{layer} polysemanticity",
                "polysemanticity",
                stats.polysemanticity_important,
                stats.polysemanticity_rest,
            ),
            (
                f"{layer} interference of token pairs",
                "interference",
                stats.interference_correlated,
                stats.interference_other,
            ),
        ],
        group_names=[("important", "rest"), ("important", "rest"), ("correlated", "other pairs")],
        totals=[
            (c["capacity_important"], c["capacity_rest"]),
            (c["polysemanticity_important"], c["polysemanticity_rest"]),
            (c["interference_correlated"], c["interference_other"]),
        ],
        legend=(f"important tokens / correlated pairs (top {pct})", "the rest"),
        title=(
            f"Neuron allocation at {layer}{' on ' + where if where else ''} ({stats.n_texts:,} texts): "
            f"important = top {pct} tokens by VMASK keep probability, "
            f"correlated = top {pct} pairs by attention"
        ),
    )


def curve_figure(curves: DeletionCurves, title: str = "Deletion curve") -> Figure:
    """Figure 3 from the numbers of an SRS evaluation (``results.json`` or logged metrics)."""
    return deletion_curve(curves.ks, curves.curves, acc=curves.acc, reference=curves.reference, title=title)


def save_all(
    figures: Mapping[str, Figure],
    out_dir: Path,
    prefix: str = "",
    formats: Sequence[str] = ("png", "svg"),
    dpi: int = 150,
) -> dict[str, list[Path]]:
    """Save each figure as ``out_dir/<prefix><name>.<format>``; return name → written files."""
    return {name: save_figure(fig, out_dir / f"{prefix}{name}", formats, dpi) for name, fig in figures.items()}
