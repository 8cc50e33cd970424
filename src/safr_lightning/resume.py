"""Resuming an interrupted run: where it continues, from which checkpoint, and with which config.

``ckpt_path`` takes four forms:

- ``null``: a fresh run.
- ``last``: this run dir's ``checkpoints/last.ckpt``; give the dir with ``hydra.run.dir=DIR``.
- a run directory (``outputs/.../<time>``): its ``checkpoints/last.ckpt``, and the run continues
  *in that directory* (``hydra.run.dir`` defaults to it, see :func:`run_dir_for`), so the best
  checkpoint found before the interruption still competes and ``results.json`` lands beside it.
- a ``.ckpt`` file: inside a run's ``checkpoints/`` folder it continues in that run's directory;
  anywhere else it starts a new directory (and best-checkpoint tracking restarts there).

Only the light modules are imported here: :func:`run_dir_for` runs while Hydra composes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safr_lightning.checkpoints import CHECKPOINT_DIR, LAST, resolve_checkpoint
from safr_lightning.errors import ConfigError
from safr_lightning.results import read_record
from safr_lightning.rundir import flatten

RESOLVER = "safr.run_dir"

# The parts of the config that decide the numbers a resumed run continues; anything else
# (trainer.*, logger.*, callbacks.*, srs.*, run_test, data loading) may change on resume.
MUST_MATCH = ("seed", "dataset", "data.batch_size", "data.bucketing", "data.bucket_batches",
              "model", "vmask", "lambda", "fidelity", "loss", "optim")  # fmt: skip
MAY_DIFFER = ("dataset.local_dir",)


def run_dir_for(ckpt_path: str | None, default: str) -> str:
    """``hydra.run.dir``: the run dir that ``ckpt_path`` resumes, else ``default`` (a new dir)."""
    if not ckpt_path or ckpt_path == "last":
        return default
    path = Path(ckpt_path).expanduser()
    if path.is_dir() and (path / CHECKPOINT_DIR / LAST).is_file():
        return str(path)
    if path.is_file() and path.parent.name == CHECKPOINT_DIR:
        return str(path.parent.parent)
    return default


def finished_results(run_dir: Path) -> dict[str, Any] | None:
    """``run_dir``'s results.json if it records a finished run (``status: ok``), else None."""
    record = read_record(run_dir)
    return dict(record.data) if record is not None and record.status == "ok" else None


def resolve_resume(ckpt_path: str | None, run_dir: Path) -> Path | None:
    """The checkpoint file that ``ckpt_path`` names (None for a fresh run); one clear error if none."""
    if not ckpt_path:
        return None
    if ckpt_path == "last":
        candidate = run_dir / CHECKPOINT_DIR / LAST
        if not candidate.is_file():
            raise ConfigError(
                f"invalid config: ckpt_path='last' resumes the run in hydra.run.dir, but {run_dir} has no "
                f"{CHECKPOINT_DIR}/{LAST}; pass hydra.run.dir=<the interrupted run's dir> or "
                "ckpt_path=<the interrupted run's dir>"
            )
        return candidate
    try:
        return resolve_checkpoint(ckpt_path, resume=True)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (allowed: null, last, a run directory, or a .ckpt file)") from None


def _section(flat: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in flat.items() if (k == key or k.startswith(f"{key}.")) and k not in MAY_DIFFER}


def check_same_config(trained: dict[str, Any], now: dict[str, Any], ckpt_path: str) -> None:
    """Refuse to resume with a config that would change what the checkpoint's run computes.

    ``trained``: the checkpoint's resolved run config; ``now``: this run's. Raises
    :class:`ConfigError` naming the first key that differs, with both values.
    """
    old, new = flatten(trained), flatten(now)
    for section in MUST_MATCH:
        a, b = _section(old, section), _section(new, section)
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                raise ConfigError(
                    f"invalid config: {key}={b.get(key)!r}, but ckpt_path={ckpt_path!r} was trained with "
                    f"{key}={a.get(key)!r}; resume with the same {', '.join(MUST_MATCH)} "
                    "(trainer.*, logger.*, callbacks.*, srs.* may change)"
                )
