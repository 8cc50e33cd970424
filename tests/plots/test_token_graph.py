from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from safr_lightning.plots import save_figure, strongest_pairs, token_graph

WORDS = ["a", "gripping", ",", "moving", "flim", "."]


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_strongest_pairs_are_the_largest_magnitudes_of_either_sign() -> None:
    inter = np.array([[9.0, 1.0, -5.0], [1.0, 9.0, 3.0], [-5.0, 3.0, 9.0]])
    assert strongest_pairs(inter, 2) == [(0, 2, -5.0), (1, 2, 3.0)]
    assert strongest_pairs(inter, 0) == []
    keep = np.array([True, True, False])
    assert strongest_pairs(inter, 5, keep=keep) == [(0, 1, 1.0)]


def test_token_graph_writes_png_and_svg(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    inter = rng.normal(size=(6, 6))
    fig = token_graph(rng.uniform(size=6), inter + inter.T, WORDS, [False] * 4 + [True, False], top_n=4)
    files = save_figure(fig, tmp_path / "graph")
    assert [f.suffix for f in files] == [".png", ".svg"]
    assert files[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and files[0].stat().st_size > 10_000
    assert b"<svg" in files[1].read_bytes()[:1000]
    assert "flim?" in _texts(fig) and "gripping" in _texts(fig)  # the unknown word is marked
    assert len(fig.axes) == 2  # the graph and its colour bar
    lines = fig.axes[0].collections[0]
    assert len(lines.get_segments()) == 4


def test_token_graph_shows_at_most_max_tokens_highest_capacity() -> None:
    n = 12
    capacity = np.linspace(0.1, 0.9, n)
    fig = token_graph(capacity, np.zeros((n, n)), [f"w{k}" for k in range(n)], max_tokens=5)
    assert sorted(_texts(fig)) == sorted(f"w{k}" for k in range(7, 12))


def test_token_graph_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="3 tokens"):
        token_graph(np.ones(2), np.ones((3, 3)), ["a", "b", "c"])
