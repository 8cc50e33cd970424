"""Point labels that do not cover each other: each label takes the nearest free spot around its point."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox


class Label(NamedTuple):
    text: str
    x: float  # data coordinates of the point it names
    y: float
    color: str
    size: float


# Offsets (points) tried in order: right-above, right-below, left-above, left-below, above, below; then
# the same directions further out, where a thin leader line keeps the label tied to its point.
_DIRECTIONS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1), (0, -1), (1, 0), (-1, 0))
_RINGS = (5.0, 14.0, 26.0, 40.0, 56.0)
_MARKER_RADIUS = 4.0  # points: the label must not sit on any plotted point either


def place_labels(ax: Axes, labels: Sequence[Label], points: Sequence[tuple[float, float]] = ()) -> list[Annotation]:
    """Annotate ``labels`` on ``ax`` so that no two labels overlap and none covers a point in ``points``.

    Labels are placed in order (put the important ones first); each takes the first free spot of a
    widening ring of offsets, within the axes. A label that finds none keeps its last ring's first
    spot (it may overlap: better than dropping a name). Call last, when data, limits, titles and legend
    are set: it runs the figure's layout once and then freezes it.
    """
    fig = ax.figure
    if not hasattr(fig.canvas, "get_renderer"):  # a Figure made without pyplot has a bare canvas
        FigureCanvasAgg(fig)
    fig.draw_without_rendering()  # the layout engine sizes the axes first; then it is frozen (below)
    renderer = fig.canvas.get_renderer()
    to_px = fig.dpi / 72.0
    axes_box = ax.get_window_extent(renderer)
    taken: list[Bbox] = []
    for x, y in [*points, *((lab.x, lab.y) for lab in labels)]:
        px, py = ax.transData.transform((x, y))
        r = _MARKER_RADIUS * to_px
        taken.append(Bbox.from_extents(px - r, py - r, px + r, py + r))
    placed = []
    for lab in labels:
        chosen: Annotation | None = None
        for ring in _RINGS:
            for dx, dy in _DIRECTIONS:
                note = _annotate(ax, lab, (dx, dy), ring)
                box = _text_box(note, renderer)
                free = not any(box.overlaps(other) for other in taken) and _inside(box, axes_box)
                if free:
                    chosen = note
                    break
                note.remove()
            if chosen is not None:
                break
        if chosen is None:
            chosen = _annotate(ax, lab, _DIRECTIONS[0], _RINGS[-1])
        taken.append(_text_box(chosen, renderer))
        placed.append(chosen)
    fig.set_layout_engine("none")  # a later layout pass would rescale the axes under the placed labels
    return placed


def _annotate(ax: Axes, lab: Label, direction: tuple[int, int], ring: float) -> Annotation:
    dx, dy = direction
    norm = math.hypot(dx, dy) or 1.0
    offset = (ring * dx / norm, ring * dy / norm)
    ha = "left" if dx > 0 else "right" if dx < 0 else "center"
    va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
    leader = {"arrowstyle": "-", "color": lab.color, "lw": 0.5, "alpha": 0.6} if ring > _RINGS[1] else None
    return ax.annotate(lab.text, (lab.x, lab.y), textcoords="offset points", xytext=offset, ha=ha, va=va,
                       fontsize=lab.size, color=lab.color, arrowprops=leader)  # fmt: skip


def _text_box(note: Annotation, renderer: object) -> Bbox:
    # The text alone: an Annotation's own extent also covers its leader line, which reaches its point.
    note.update_positions(renderer)  # an Annotation places its text at draw time
    return Text.get_window_extent(note, renderer).padded(1.0)


def _inside(box: Bbox, outer: Bbox) -> bool:
    return outer.x0 <= box.x0 and box.x1 <= outer.x1 and outer.y0 <= box.y0 and box.y1 <= outer.y1
