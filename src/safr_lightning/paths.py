"""Where the project's own files are: the Hydra config directory."""

from __future__ import annotations

from pathlib import Path

# conf/ sits beside src/ in the repository (the project is installed editable, `make install`).
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")
