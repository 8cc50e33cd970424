"""Which checkpoint a path means, and reading one: the rule shared by evaluate, explain and resume.

``ckpt_path`` is a ``.ckpt`` file (that file) or a run directory. For a run directory:

- **evaluating** (``evaluate``, ``explain``, the Python API): the checkpoint its ``results.json``
  says the run was tested on (``checkpoint``: ``checkpoints/best.ckpt``, or ``last.ckpt`` under
  ``fidelity.test_on=last``), else ``checkpoints/best.ckpt``, else ``checkpoints/last.ckpt``;
- **resuming** (``train ckpt_path=...``): ``checkpoints/last.ckpt``, where training stopped
  (see :mod:`safr_lightning.resume` for ``ckpt_path=last`` and where the run continues).

Light imports: torch is imported only to read a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safr_lightning.errors import ConfigError, SAFRError, first_line
from safr_lightning.results import RESULTS_FILE, ResultsUnreadable, load_record

CHECKPOINT_DIR = "checkpoints"
BEST, LAST = "best.ckpt", "last.ckpt"


def run_dir_of(checkpoint: Path) -> Path:
    """The run directory a checkpoint belongs to: the parent of ``checkpoints/``, else its own folder."""
    parent = checkpoint.resolve().parent
    return parent.parent if parent.name == CHECKPOINT_DIR else parent


def tested_checkpoint(run_dir: Path) -> str | None:
    """``results.json``'s ``checkpoint`` (relative to the run dir); None without one.

    An unreadable results.json is one line: the run's tested checkpoint cannot be told.
    """
    path = run_dir / RESULTS_FILE
    if not path.is_file():
        return None
    try:
        return load_record(path).checkpoint
    except ResultsUnreadable as exc:
        raise SAFRError(
            f"{path} is unreadable ({exc.cause}); name the checkpoint: ckpt_path={run_dir}/{CHECKPOINT_DIR}/{BEST}"
        ) from None


def resolve_checkpoint(ckpt_path: str | None, resume: bool = False) -> Path:
    """The checkpoint file ``ckpt_path`` means (module docstring); one clear error if there is none."""
    if not ckpt_path:
        raise ConfigError("ckpt_path is required: give ckpt_path=<a .ckpt file or a run directory>")
    path = Path(ckpt_path).expanduser()
    if path.is_dir():
        if resume:
            candidates = [f"{CHECKPOINT_DIR}/{LAST}"]
        else:
            tested = tested_checkpoint(path)
            candidates = [*([tested] if tested else []), f"{CHECKPOINT_DIR}/{BEST}", f"{CHECKPOINT_DIR}/{LAST}"]
        for name in candidates:
            if (path / name).is_file():
                return path / name
        raise ConfigError(
            f"invalid config: ckpt_path={ckpt_path!r}; no checkpoint at {path / candidates[0]}"
            + ("" if resume else f" (nor {CHECKPOINT_DIR}/{BEST} or {LAST})")
        )
    if not path.is_file():
        raise ConfigError(f"invalid config: ckpt_path={ckpt_path!r}; no checkpoint at {path}")
    return path


def load_checkpoint_file(path: Path, what: str) -> dict[str, Any]:
    """A Lightning checkpoint written by this project, or one line saying why ``path`` is not one."""
    import torch

    try:
        try:  # mapped, not read: the weights are loaded again by whoever asked
            checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            checkpoint = torch.load(path, map_location="cpu", weights_only=False)  # an old-format file
    except Exception as exc:  # truncated, not a torch file, a pickle of something else
        reason = first_line(exc)
        raise SAFRError(f"{what}={path}: not a readable checkpoint ({reason})") from None
    missing = [k for k in ("state_dict", "epoch", "global_step", "hyper_parameters") if not isinstance(checkpoint, dict)
               or k not in checkpoint]  # fmt: skip
    if missing:
        raise SAFRError(
            f"{what}={path}: not a checkpoint written by safr_lightning (no {', '.join(missing)}; a plain "
            "state_dict cannot be resumed: the run's config, tokenizer and optimizer state travel in the .ckpt)"
        )
    hparams = checkpoint["hyper_parameters"]
    if not isinstance(hparams, dict) or "tokenizer_json" not in hparams:
        raise SAFRError(f"{what}={path}: the checkpoint carries no tokenizer (not written by safr_lightning)")
    return checkpoint
