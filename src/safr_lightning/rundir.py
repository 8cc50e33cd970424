"""A run directory that says what it holds: one writer at a time, the config it was trained with.

- :func:`hold_run_dir` takes ``<run dir>/.lock`` (pid and host) for the whole run. A second run
  into the same dir stops at once with one line naming the holder; a lock whose process is dead
  (a killed run) is taken over with a warning.
- :func:`fingerprint` hashes the config keys that change what a run computes. ``results.json``
  records it from the first moment (``status: running``), so a finished run is reused only by the
  same config (:func:`config_difference`), and a table never files a result under another config.
- :func:`check_writable` refuses an output place nobody can write before any work is done.
- :func:`claim_run_dir`: nothing is written into a run dir until the run has checked that the dir
  is its own (not another config's finished run): then Hydra's ``.hydra/`` record of the launch is
  written (``hydra.output_subdir`` is null in ``conf/train.yaml`` so that Hydra does not write it
  before the task starts) and ``train.log`` is opened (:mod:`safr_lightning.runlog`). A job refused
  by its dir leaves the dir byte for byte as it was.

Light imports only: the Hydra entry points call this before torch is imported.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from safr_lightning.errors import ConfigError, RunDirTaken
from safr_lightning.files import DiskFull, is_disk_full, remove_stale_temporaries, temporary_name, write_text_atomic
from safr_lightning.results import RESULTS_FILE
from safr_lightning.runlog import open_run_logs

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
SAVED_CONFIG = "config.yaml"
HYDRA_DIR = ".hydra"

# Keys that change neither training nor a stored metric: where data, logs and progress go, how the
# work is spread over processes. Every other key is part of the fingerprint.
NEUTRAL_KEYS = (
    "ckpt_path", "logger", "callbacks.figures", "task_name", "sweep_name", "tags", "trainer.extra.profiler",
    "trainer.enable_progress_bar", "trainer.log_every_n_steps", "trainer.nan_check_every", "trainer.jobs_per_gpu",
    "dataset.local_dir", "paths", "data.num_workers", "data.pin_memory", "data.persistent_workers", "data.cache_dir",
)  # fmt: skip

_held: set[Path] = set()  # run dirs this process holds (a nested hold is a no-op)
_claimed: set[Path] = set()  # run dirs whose .hydra/ this process wrote


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    if not isinstance(tree, dict):
        return {prefix[:-1]: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}{key}."))
    return flat


def _neutral(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in NEUTRAL_KEYS)


def fingerprinted(config: dict[str, Any]) -> dict[str, Any]:
    """The flattened keys of a resolved run config that the fingerprint covers."""
    return {k: v for k, v in flatten(config).items() if not _neutral(k)}


def fingerprint(config: dict[str, Any]) -> str:
    """A short hash of :func:`fingerprinted` ``config`` (resolved, as a plain dict)."""
    text = json.dumps(sorted(fingerprinted(config).items()), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def config_difference(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, Any, Any] | None:
    """The first fingerprinted key whose value differs, with both values; None if none does.

    A key ``old`` lacks is not a difference: it was added to the project after that run, whose
    behaviour was the key's default.
    """
    a, b = fingerprinted(old), fingerprinted(new)
    for key in sorted(a):
        if key in b and a[key] != b[key]:
            return key, a[key], b[key]
    removed = sorted(set(a) - set(b))
    return (removed[0], a[removed[0]], "<absent>") if removed else None


# Set by the launchers of a distributed job: Lightning's (LOCAL_RANK, NODE_RANK), torchrun (RANK),
# SLURM (SLURM_PROCID). Only the job's first process holds the run dir.
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


def is_first_process() -> bool:
    """Is this the job's first process (or the only one)? It alone writes the run dir's files."""
    return all(os.environ.get(name, "0") in ("", "0") for name in RANK_VARIABLES)


def _start_time(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot, Linux), so a reused pid is not taken for the holder."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        pass
    now = _start_time(pid)
    return started is None or now is None or now == started


def _read_lock(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _check_holder(run_dir: Path, path: Path, host: str) -> None:
    """Raise if ``path``'s holder may still run; remove the lock (with a warning) if it is gone."""
    holder = _read_lock(path)
    pid, their_host = holder.get("pid"), holder.get("host")
    if not isinstance(pid, int):
        raise RunDirTaken(f"{run_dir} is locked by {path}, which cannot be read; if no run uses the dir, delete it")
    if their_host != host or _alive(pid, holder.get("started")):
        where = "" if their_host == host else f" on {their_host}"
        raise RunDirTaken(
            f"{run_dir} is in use by another run (pid {pid}{where}; {path}); wait for it, give this run its own "
            f"dir (hydra.run.dir=...), or, if that run is gone, delete {path.name}"
        )
    log.warning("taking over %s: its run (pid %s) is gone", path, pid)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


@contextlib.contextmanager
def hold_run_dir(run_dir: Path) -> Iterator[None]:
    """Be the only writer of ``run_dir`` while the block runs (rank 0 of a distributed job only)."""
    key = run_dir.resolve()
    if key in _held or not is_first_process():
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": _start_time(os.getpid())}
    for _ in range(3):
        # Written whole, then linked into place: nobody ever reads a half-written lock.
        name = temporary_name(path)  # a killed writer's is removed by remove_stale_temporaries
        try:
            with open(name, "w") as handle:
                json.dump(me, handle)
            os.link(name, path)
        except FileExistsError:
            _check_holder(run_dir, path, me["host"])
            continue
        except OSError as exc:
            if is_disk_full(exc):
                raise DiskFull(path, exc) from exc
            raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
        break
    else:  # pragma: no cover - three lost races in a row
        raise RunDirTaken(f"{run_dir}: could not take {path}")
    _held.add(key)
    try:
        yield
    finally:
        _held.discard(key)
        _claimed.discard(key)  # the next run into this dir (same process: a resume) claims it afresh
        if _read_lock(path).get("pid") == me["pid"]:
            path.unlink(missing_ok=True)


def claim_run_dir(run_dir: Path, cfg: Any) -> None:
    """``run_dir`` is this run's own from now on: write ``.hydra/`` for the launch, open ``train.log``.

    ``cfg`` is the job's config (without the ``hydra`` node, as Hydra saves it). Outside a Hydra
    job (a notebook, a test calling ``run_training``) only the log handlers are opened, if any.
    """
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    key = run_dir.resolve()
    if key in _claimed:
        return
    if HydraConfig.initialized() and HydraConfig.get().output_subdir is None:
        full = HydraConfig.instance().cfg  # {"hydra": ...}, as Hydra writes hydra.yaml
        assert full is not None
        where = run_dir / HYDRA_DIR
        write_text_atomic(where / "config.yaml", OmegaConf.to_yaml(cfg))
        write_text_atomic(where / "hydra.yaml", OmegaConf.to_yaml(full))
        write_text_atomic(where / "overrides.yaml", OmegaConf.to_yaml(full.hydra.overrides.task))
    _claimed.add(key)
    for path in remove_stale_temporaries(run_dir):  # from a writer killed mid-write (kill -9)
        log.warning("removed %s, left by a killed writer", path)
    open_run_logs()


def check_run_dir(run_dir: Path, launched_from: Path | None = None) -> None:
    """A run dir of its own, writable, whose ``results.json`` can be written (one line otherwise).

    ``launched_from``: the directory the command was started in (Hydra's ``runtime.cwd``; the
    current one by default, which ``hydra.job.chdir=true`` moves into the run dir).
    """
    if run_dir.resolve() == (launched_from or Path.cwd()).resolve():
        raise ConfigError(
            f"invalid config: hydra.run.dir={str(run_dir)!r} is the working directory; a run needs a dir of its "
            "own (leave hydra.run.dir unset for a new one)"
        )
    check_writable(run_dir, "the run dir")
    results = run_dir / RESULTS_FILE
    if results.exists() and not results.is_file():
        raise ConfigError(f"cannot write the run's results: {results} exists and is not a file")


def check_writable(path: Path, what: str) -> None:
    """One line (exit 2) unless ``path`` (a directory, existing or to be made) can be written."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ConfigError(f"cannot write {what}: {probe} is a file, not a directory")
    try:
        if probe == path:
            with tempfile.TemporaryFile(dir=path):
                pass
        elif not os.access(probe, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "permission denied", str(probe))
    except OSError as exc:
        raise ConfigError(f"cannot write {what} in {path}: {exc.strerror or exc} ({probe})") from None
