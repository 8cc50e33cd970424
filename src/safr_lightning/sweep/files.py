"""Atomic writes, so that a reader (or a second aggregation running alongside) never sees half a file."""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.figure import Figure


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_text_atomic(path: Path, text: str) -> Path:
    tmp = _tmp(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def save_figure_atomic(fig: Figure, path: Path) -> Path:
    tmp = _tmp(path)
    fig.savefig(tmp, format=path.suffix.lstrip("."), dpi=150)
    os.replace(tmp, path)
    return path
