"""GPU slots for sweeps that run jobs in parallel on one machine (``hydra/launcher=joblib``).

Each GPU has ``trainer.jobs_per_gpu`` slots (default 1). A job holds an exclusive lock on one slot
(an ``flock`` on ``<lock_dir>/gpu<id>.slot<k>.lock``, released by the kernel even if the job dies)
and sees only that slot's GPU through ``CUDA_VISIBLE_DEVICES``. One SAFR job uses a small part of a
large GPU, so several per GPU fill it (``jobs_per_gpu=4`` with ``hydra.launcher.n_jobs`` = 4 × the
GPUs); extra jobs wait for a free slot. The lock directory is per user and machine-wide, so two
sweeps on one box share the slots too.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

CUDA_ACCELERATORS = ("gpu", "cuda")

# A joblib worker runs many jobs. Once CUDA is initialized in it, the GPU it sees is fixed, so the
# worker must keep claiming the same one; before that it prefers it (fewer re-initializations).
_pinned: str | None = None
_visible_at_start: list[str] | None = None


def default_lock_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"safr-gpu-locks-{os.getuid()}"


def visible_gpus() -> list[str]:
    """The GPU ids this process could use before any slot was claimed (``CUDA_VISIBLE_DEVICES`` or all)."""
    global _visible_at_start
    if _visible_at_start is None:
        env = os.environ.get("CUDA_VISIBLE_DEVICES")
        if env is not None:
            _visible_at_start = [g.strip() for g in env.split(",") if g.strip()]
        else:
            import torch

            # Before CUDA is initialized this asks NVML and does not create a context.
            _visible_at_start = [str(i) for i in range(torch.cuda.device_count())]
    return list(_visible_at_start)


def _cuda_initialized() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_initialized())


@contextmanager
def gpu_slot(gpus: Sequence[str], lock_dir: Path, poll_s: float = 2.0, slots_per_gpu: int = 1) -> Iterator[str]:
    """Hold one of the ``slots_per_gpu`` slots of one of ``gpus`` for the duration of the block,
    exposing only that GPU to CUDA."""
    global _pinned
    if not gpus:
        raise ValueError("gpu_slot needs at least one GPU id")
    if slots_per_gpu < 1:
        raise ValueError("gpu_slot needs slots_per_gpu >= 1")
    lock_dir.mkdir(parents=True, exist_ok=True)
    if _pinned is not None and _cuda_initialized():
        candidates = [_pinned]
    else:
        candidates = sorted(gpus, key=lambda g: g != _pinned)
    # GPU-major over slot-minor: the first free slot of the first GPU that has one.
    slots = [(gpu, k) for k in range(slots_per_gpu) for gpu in candidates]
    while True:
        for gpu, k in slots:
            handle = open(lock_dir / f"gpu{gpu}.slot{k}.lock", "a")  # held until the job ends
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu
            _pinned = gpu
            try:
                yield gpu
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        time.sleep(poll_s)


def job_gpu_slot(cfg: Any, hydra_cfg: Any) -> AbstractContextManager[Any]:
    """A GPU slot for a one-GPU job of a joblib sweep; nothing for any other job."""
    launcher = str(hydra_cfg.launcher.get("_target_", ""))
    one_gpu = cfg.trainer.accelerator in CUDA_ACCELERATORS and cfg.trainer.devices == 1
    if not (launcher.endswith("JoblibLauncher") and one_gpu):
        return nullcontext()
    gpus = visible_gpus()
    slots = int(getattr(cfg.trainer, "jobs_per_gpu", 1))
    return gpu_slot(gpus, default_lock_dir(), slots_per_gpu=slots) if gpus else nullcontext()
