"""Figure 3: accuracy as the top-k% tokens are deleted, from plain numbers (results.json or metrics)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure

from safr_lightning.plots.style import new_figure
from safr_lightning.results import per_k

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


def curves_from_results(test: Mapping[str, Any]) -> DeletionCurves | None:
    """From ``results.json["test"]`` (DESIGN §8: ``ks``, ``acc``, ``acc_capacity {"10": ...}``, ...).

    Every ``acc_<scorer>`` mapping becomes a curve; ``acc_random`` becomes the reference. Keys
    may be written ``"10"`` or ``"10.0"``. Returns None when there is no deletion result.
    """
    by_name: dict[str, dict[float, float]] = {}
    for key, value in test.items():
        if key.startswith("acc_") and isinstance(value, Mapping):
            by_name[key.removeprefix("acc_")] = {k: v for k, v in per_k(value).items() if v is not None}
    return _assemble(by_name, test.get("ks"), test.get("acc"))


_METRIC = re.compile(r"^test/acc_(?P<name>[a-z_]+)@(?P<k>[0-9.]+)$")


def curves_from_metrics(metrics: Mapping[str, Any], prefix: str = "test") -> DeletionCurves | None:
    """From logged metrics named ``<prefix>/acc_<scorer>@<k>`` (DESIGN §7) and ``<prefix>/acc``."""
    by_name: dict[str, dict[float, float]] = {}
    pattern = re.compile(_METRIC.pattern.replace("test", re.escape(prefix), 1))
    for key, value in metrics.items():
        match = pattern.match(key)
        if match:  # a k that is no number ("1.2.3") is dropped by per_k
            by_name.setdefault(match["name"], {}).update(per_k({match["k"]: value}))
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


@dataclass
class DeletionLine:
    """One line of Figure 3: accuracy in % at each k (None = not measured), with an optional ±std band."""

    label: str
    ks: Sequence[float]
    values: Sequence[float | None]
    std: Sequence[float | None] | None = None
    dashed: bool = False
    color: str | None = None
    marker: str = "o"


def draw_deletion(lines: Sequence[DeletionLine], *, title: str, acc: float | None = None) -> Figure:
    """Figure 3, the one drawing: accuracy (y, %) against the share of tokens deleted (x, k %).

    Solid lines delete by a scorer, dashed lines at random (the reference SRS is measured against);
    ``acc`` (in %) marks the intact accuracy with a thin horizontal line.
    """
    fig = new_figure(6.4, 4.6)
    ax = fig.add_subplot()
    xticks: set[float] = set()
    for line in lines:
        points = [(float(k), float(v), s) for k, v, s in zip(line.ks, line.values, line.std or [None] * len(line.ks),
                                                              strict=True) if v is not None]  # fmt: skip
        if not points:
            continue
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        xticks.update(xs)
        ax.plot(xs, ys, ls="--" if line.dashed else "-", marker=line.marker, ms=5 if line.dashed else 6,
                lw=1.5 if line.dashed else 2, color=line.color, label=line.label)  # fmt: skip
        if line.std is not None:
            lo = [y - (s or 0.0) for _, y, s in points]
            hi = [y + (s or 0.0) for _, y, s in points]
            ax.fill_between(xs, lo, hi, color=line.color, alpha=0.12, linewidth=0)
    if acc is not None:
        ax.axhline(acc, color="black", lw=0.8, alpha=0.4)
        # Below the line at the right end: above it the label would collide with the title.
        ax.annotate(f"Acc_S = {acc:.1f}%", (max(xticks, default=0.0), acc), xytext=(0, -4),
                    textcoords="offset points", ha="right", va="top", fontsize=9)  # fmt: skip
    ax.set_xlabel("tokens deleted, top k% by score")
    ax.set_ylabel("accuracy (%)")
    if xticks:
        ax.set_xticks(sorted(xticks))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=11)
    return fig


def deletion_curve(
    ks: Sequence[float],
    curves: Mapping[str, Sequence[float | None]],
    *,
    acc: float | None = None,
    reference: Sequence[float | None] | None = None,
    reference_label: str = "random deletion",
    title: str = "Deletion curve",
) -> Figure:
    """One run's Figure 3: a line per scorer, the random reference dashed grey.

    ``curves``: label → accuracy (fraction in [0, 1]) per k, e.g. ``{"capacity (FC1)": [...]}``;
    ``acc``: the intact accuracy Acc_S, drawn at k = 0 where every curve starts; ``reference``:
    the random-deletion accuracies. The gap between the reference and a curve at k is what SRS
    measures: the steeper a curve falls below the reference, the better its scorer finds the tokens
    the model relies on.
    """
    start_k = [0.0] if acc is not None else []
    start = [acc] if acc is not None else []

    def line(label: str, values: Sequence[float | None], **style: Any) -> DeletionLine:
        pct = [None if v is None else 100 * float(v) for v in [*start, *values]]
        return DeletionLine(label, [*start_k, *(float(k) for k in ks)], pct, **style)

    lines = [line(reference_label, reference, dashed=True, color="#7f7f7f", marker="s")] if reference else []
    lines += [line(f"{name} deletion", values, color=color)
              for (name, values), color in zip(curves.items(), CURVE_COLORS * 4, strict=False)]  # fmt: skip
    return draw_deletion(lines, title=title, acc=None if acc is None else 100 * acc)
