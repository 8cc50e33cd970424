"""Point labels that do not cover each other (the λ-search figure, where front and grid crowd together)."""

from __future__ import annotations

import itertools
import random

from matplotlib.text import Text

from safr_lightning.plots.labels import Label, place_labels
from safr_lightning.plots.style import new_figure


def crowded(n: int, seed: int) -> list[Label]:
    rng = random.Random(seed)
    return [Label(f"({rng.uniform(0, 9):.2f}, {rng.uniform(0, 9):.2f})", 10 + rng.gauss(0, 0.3),
                  50 + rng.gauss(0, 0.3), "tab:red", 7) for _ in range(n)]  # fmt: skip


def test_crowded_labels_do_not_overlap_and_stay_in_the_axes() -> None:
    for seed in range(3):
        fig = new_figure(7.0, 5.0)
        ax = fig.add_subplot()
        labels = crowded(9, seed)
        ax.scatter([lab.x for lab in labels], [lab.y for lab in labels])
        ax.set_xlim(0, 20)
        ax.set_ylim(40, 60)
        notes = place_labels(ax, labels, [(10.0, 50.0)])
        renderer = fig.canvas.get_renderer()
        for note in notes:
            note.update_positions(renderer)
        boxes = [Text.get_window_extent(note, renderer) for note in notes]
        assert [note.get_text() for note in notes] == [lab.text for lab in labels]
        for (i, a), (j, b) in itertools.combinations(enumerate(boxes), 2):
            assert not a.overlaps(b), f"seed {seed}: labels {i} and {j} overlap"
        frame = ax.get_window_extent(renderer)
        assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)


def test_a_label_does_not_cover_a_point_it_is_told_to_avoid() -> None:
    def covers(avoid: list[tuple[float, float]]) -> bool:
        fig = new_figure(4.0, 3.0)
        ax = fig.add_subplot()
        ax.set_xlim(0, 10)
        ax.set_ylim(0, 10)
        (note,) = place_labels(ax, [Label("long label here", 5.0, 5.0, "k", 8)], avoid)
        renderer = fig.canvas.get_renderer()
        note.update_positions(renderer)
        return Text.get_window_extent(note, renderer).contains(*ax.transData.transform((5.6, 5.3)))

    assert covers([])  # the first spot (right of and above its point) is where the other point sits
    assert not covers([(5.6, 5.3)])
