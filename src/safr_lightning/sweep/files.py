"""Atomic text writes, so that a reader (or a second aggregation running alongside) never sees half a file.

Figures are saved atomically by :func:`safr_lightning.plots.style.save_figure`.
"""

from __future__ import annotations

import os
from pathlib import Path


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_text_atomic(path: Path, text: str) -> Path:
    tmp = _tmp(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
