from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from safr_lightning.plots import interference_grid, layer_heatmap, save_figure

WORDS = ["not", "a", "zorbly", "film"]
UNKNOWN = [False, False, True, False]


def test_layer_heatmap_writes_image_with_a_row_per_layer(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = {"embedding capacity": rng.uniform(size=4), "VMASK keep probability": rng.uniform(size=4)}
    fig = layer_heatmap(rows, WORDS, UNKNOWN)
    (png,) = save_figure(fig, tmp_path / "heat", ["png"])
    assert png.stat().st_size > 5_000
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(rows)
    labels = ax.get_xticklabels()
    assert [t.get_text() for t in labels] == ["not", "a", "zorbly?", "film"]
    assert labels[2].get_fontstyle() == "italic" and labels[0].get_fontstyle() == "normal"
    assert len(ax.texts) == 8  # every value written in its cell
    assert len(fig.axes) == 2  # and a colour bar


def test_layer_heatmap_rejects_a_short_row() -> None:
    with pytest.raises(ValueError, match="4 values"):
        layer_heatmap({"x": np.ones(3)}, WORDS)


def test_interference_grid_centres_each_colour_scale_at_zero(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    matrices = {name: rng.normal(size=(4, 4)) * scale for name, scale in [("emb", 1.0), ("FC1", 50.0)]}
    matrices["FC1"][0, 0] = 1e6  # a token with itself: left out of the scale
    fig = interference_grid(matrices, WORDS, UNKNOWN, columns=2)
    files = save_figure(fig, tmp_path / "grid")
    assert all(f.stat().st_size > 5_000 for f in files)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["emb", "FC1"]
    for ax, matrix in zip(panels, matrices.values(), strict=True):
        norm = ax.images[0].norm
        off = np.abs(matrix[~np.eye(4, dtype=bool)]).max()
        assert norm.vcenter == 0 and norm.vmin == pytest.approx(-off) and norm.vmax == pytest.approx(off)
    assert len(fig.axes) == 4  # two panels, two colour bars
