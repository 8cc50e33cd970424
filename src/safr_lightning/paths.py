"""Where the project's own files are: the Hydra config directory.

``conf/`` ships inside the package (``safr_lightning/conf``; the repository's top-level ``conf`` is a
link to it), so an installed wheel finds its configs as an editable install does.
"""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")
