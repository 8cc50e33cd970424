from __future__ import annotations

from pathlib import Path

import numpy as np

from safr_lightning.plots import group_comparison, save_figure


def test_group_comparison_writes_one_panel_per_statistic(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    panels = [
        ("capacity", "C", rng.uniform(0.3, 1, 50), rng.uniform(0, 0.7, 120)),
        ("interference", "I", rng.normal(size=80), rng.normal(size=200)),
    ]
    fig = group_comparison(panels, group_names=[("important", "rest"), ("correlated", "other")],
                           totals=[(50, 120), (800, 200)])  # fmt: skip
    (png,) = save_figure(fig, tmp_path / "groups", ["png"])
    assert png.stat().st_size > 5_000
    assert [ax.get_title() for ax in fig.axes] == ["capacity", "interference"]
    labels = [t.get_text() for t in fig.axes[1].get_xticklabels()]
    assert labels == ["correlated\n(n=800; 80 sampled)", "other\n(n=200)"]
    means = fig.axes[0].collections[-1].get_offsets()[:, 1]
    np.testing.assert_allclose(means, [panels[0][2].mean(), panels[0][3].mean()])


def test_group_comparison_survives_an_empty_group(tmp_path: Path) -> None:
    fig = group_comparison([("capacity", "C", np.array([]), np.array([0.2, 0.4]))])
    assert save_figure(fig, tmp_path / "empty", ["png"])[0].stat().st_size > 1_000
