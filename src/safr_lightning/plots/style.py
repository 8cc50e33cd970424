"""What every figure shares: headless figures, token labels (unknown words marked), saving."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures are files and W&B images, never windows

from matplotlib.figure import Figure
from matplotlib.text import Text

from safr_lightning.files import atomic_path

FORMATS = ("png", "svg", "pdf")
POSITIVE = "#c0392b"  # red: positive interference
NEGATIVE = "#2471a3"  # blue: negative interference
UNKNOWN_COLOR = "#7f7f7f"
UNKNOWN_MARK = "?"


def new_figure(width: float, height: float) -> Figure:
    """A figure not registered with pyplot (no global state, nothing to close, safe in callbacks)."""
    return Figure(figsize=(width, height), layout="constrained")


def token_labels(words: Sequence[str], unknown: Sequence[bool] | None = None) -> list[str]:
    """Tick labels: each word as written, an unknown one followed by ``?``."""
    unknown = unknown or [False] * len(words)
    return [f"{w}{UNKNOWN_MARK}" if u else w for w, u in zip(words, unknown, strict=True)]


def mark_unknown(labels: Sequence[Text], unknown: Sequence[bool] | None) -> None:
    """Grey italic for the labels of words the vocabulary does not know."""
    for text, is_unknown in zip(labels, unknown or [], strict=False):
        if is_unknown:
            text.set_color(UNKNOWN_COLOR)
            text.set_fontstyle("italic")


def save_figure(fig: Figure, path: str | Path, formats: Sequence[str] = ("png", "svg"), dpi: int = 150) -> list[Path]:
    """Write ``fig`` as ``path.<format>`` for each format (``path`` without suffix); return the files.

    Each file is written beside its name and moved into place, so a reader (a dashboard, a second
    aggregation running alongside) never sees half a file.
    """
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown figure format {bad[0]!r}; allowed: {', '.join(FORMATS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        target = path.with_name(f"{path.name}.{fmt}")
        # A fixed salt for SVG element ids, so the same figure gives the same file.
        with matplotlib.rc_context({"svg.hashsalt": "safr"}), atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_metadata(fmt))
        written.append(target)
    return written


def _metadata(fmt: str) -> dict[str, str | None]:
    # No creation date in SVG/PDF either.
    if fmt == "svg":
        return {"Date": None}
    if fmt == "pdf":
        return {"CreationDate": None}
    return {}
