"""Figure 3: accuracy as the top-k% tokens are deleted, from plain numbers (results.json or metrics)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure

from safr_lightning.plots.style import new_figure

REFERENCE = "random"
CURVE_COLORS = ("#c0392b", "#27ae60", "#8e44ad", "#d68910")


@dataclass
class DeletionCurves:
    """Accuracies after deleting k% of tokens: ``curves`` name → one value per k (None = not measured).

    ``acc`` is the accuracy on the intact texts (k = 0); ``reference`` is the random-deletion curve.
    """

    ks: list[float]
    curves: dict[str, list[float | None]]
    acc: float | None = None
    reference: list[float | None] | None = None


def _number(key: Any) -> float | None:
    try:
        return float(key)
    except (TypeError, ValueError):
        return None


def curves_from_results(test: Mapping[str, Any]) -> DeletionCurves | None:
    """From ``results.json["test"]`` (DESIGN §8: ``ks``, ``acc``, ``acc_capacity {"10": ...}``, ...).

    Every ``acc_<scorer>`` mapping becomes a curve; ``acc_random`` becomes the reference. Keys
    may be written ``"10"`` or ``"10.0"``. Returns None when there is no deletion result.
    """
    by_name: dict[str, dict[float, float]] = {}
    for key, value in test.items():
        if key.startswith("acc_") and isinstance(value, Mapping):
            points = {_number(k): v for k, v in value.items()}
            by_name[key.removeprefix("acc_")] = {
                k: float(v) for k, v in points.items() if k is not None and v is not None
            }
    return _assemble(by_name, test.get("ks"), test.get("acc"))


_METRIC = re.compile(r"^test/acc_(?P<name>[a-z_]+)@(?P<k>[0-9.]+)$")


def curves_from_metrics(metrics: Mapping[str, Any], prefix: str = "test") -> DeletionCurves | None:
    """From logged metrics named ``<prefix>/acc_<scorer>@<k>`` (DESIGN §7) and ``<prefix>/acc``."""
    by_name: dict[str, dict[float, float]] = {}
    pattern = re.compile(_METRIC.pattern.replace("test", re.escape(prefix), 1))
    for key, value in metrics.items():
        match = pattern.match(key)
        if match and _number(match["k"]) is not None:
            by_name.setdefault(match["name"], {})[float(match["k"])] = float(value)
    acc = metrics.get(f"{prefix}/acc")
    return _assemble(by_name, None, float(acc) if acc is not None else None)


def _assemble(by_name: dict[str, dict[float, float]], ks: Any, acc: Any) -> DeletionCurves | None:
    scorers = {name: points for name, points in by_name.items() if name != REFERENCE and points}
    if not scorers:
        return None
    all_ks = sorted({float(k) for k in ks} if ks else {k for p in by_name.values() for k in p})
    ordered = sorted(scorers, key=lambda name: (name != "capacity", name))  # capacity first: the paper's
    curves = {name: [scorers[name].get(k) for k in all_ks] for name in ordered}
    reference = by_name.get(REFERENCE)
    return DeletionCurves(
        ks=all_ks,
        curves=curves,
        acc=float(acc) if acc is not None else None,
        reference=[reference.get(k) for k in all_ks] if reference else None,
    )


def deletion_curve(
    ks: Sequence[float],
    curves: Mapping[str, Sequence[float | None]],
    *,
    acc: float | None = None,
    reference: Sequence[float | None] | None = None,
    reference_label: str = "random deletion",
    title: str = "Deletion curve",
) -> Figure:
    """Accuracy (y, %) against the share of tokens deleted (x, k %): one line per scorer.

    ``curves``: label → accuracy (fraction in [0, 1]) per k, e.g. ``{"capacity (FC1)": [...]}``;
    ``acc``: the intact accuracy Acc_S, drawn at k = 0 where every curve starts; ``reference``:
    the random-deletion accuracies, dashed grey. The gap between the reference and a curve at k is
    what SRS measures: the steeper a curve falls below the reference, the better its scorer finds
    the tokens the model relies on.
    """
    fig = new_figure(6.4, 4.6)
    ax = fig.add_subplot()
    x0 = [0.0] if acc is not None else []
    y0 = [100 * acc] if acc is not None else []

    def line(values: Sequence[float | None]) -> tuple[list[float], list[float]]:
        pairs = [(float(k), 100 * float(v)) for k, v in zip(ks, values, strict=True) if v is not None]
        return x0 + [p[0] for p in pairs], y0 + [p[1] for p in pairs]

    if reference is not None:
        ax.plot(*line(reference), ls="--", color="#7f7f7f", marker="s", ms=5, label=reference_label)
    for (name, values), color in zip(curves.items(), CURVE_COLORS * 4, strict=False):
        ax.plot(*line(values), color=color, marker="o", ms=6, lw=2, label=f"{name} deletion")
    if acc is not None:
        ax.axhline(100 * acc, color="black", lw=0.8, alpha=0.4)
        # Below the line at the right end: above it the label would collide with the title.
        ax.annotate(f"Acc_S = {100 * acc:.1f}%", (float(ks[-1]), 100 * acc), xytext=(0, -4),
                    textcoords="offset points", ha="right", va="top", fontsize=9)  # fmt: skip
    ax.set_xlabel("tokens deleted, top k% by score")
    ax.set_ylabel("accuracy (%)")
    ax.set_xticks([0.0, *[float(k) for k in ks]] if acc is not None else [float(k) for k in ks])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    ax.set_title(title, fontsize=11)
    return fig
