from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.figure import Figure

from safr_lightning.plots import save_figure, token_labels
from safr_lightning.plots.style import new_figure


def test_token_labels_mark_unknown_words() -> None:
    assert token_labels(["Sonny", "is", "spiked"], [True, False, False]) == ["Sonny?", "is", "spiked"]
    assert token_labels(["a"]) == ["a"]


def _figure() -> Figure:
    fig = new_figure(2, 2)
    fig.add_subplot().plot([0, 1])
    return fig


def test_save_figure_writes_each_format_and_rejects_others(tmp_path: Path) -> None:
    fig = _figure()
    files = save_figure(fig, tmp_path / "sub" / "fig", ["png", "svg", "pdf"])
    assert [f.name for f in files] == ["fig.png", "fig.svg", "fig.pdf"]
    assert all(f.stat().st_size > 0 for f in files)
    with pytest.raises(ValueError, match="jpeg"):
        save_figure(fig, tmp_path / "x", ["jpeg"])


def test_same_figure_gives_the_same_svg(tmp_path: Path) -> None:
    first = save_figure(_figure(), tmp_path / "first", ["svg"])[0]
    second = save_figure(_figure(), tmp_path / "second", ["svg"])[0]
    assert first.read_bytes() == second.read_bytes()  # no date, fixed element ids
