"""Single runs as child processes, several side by side, stopped together with the parent.

Plans (``sweep/committed.py``) and the re-tests of a λ study (``search/report.py``) run each job as
its own ``python -m safr_lightning.train`` process, ``jobs`` at a time from worker threads. A signal
reaches only the parent's main thread: ``subprocess.run`` in a worker would leave its child training
for hours after the parent's ``Terminated`` or ``KeyboardInterrupt``. Here every child is tracked,
and whatever ends the main thread's wait (a signal, a bug) stops them all before it propagates:
SIGTERM first (the train CLI then records its run as interrupted and keeps ``last.ckpt``), SIGKILL
after ``grace_s``.

With ``jobs`` > 1 each child runs in a slot (0 … jobs − 1); on a machine with GPUs a slot sees one of
them (``CUDA_VISIBLE_DEVICES``, round robin), so parallel GPU runs do not all land on the first.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Out = TypeVar("Out")


def usable_cores() -> int:
    """The cores this process may run on (its affinity: a container's or taskset's limit counts)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def slot_env(slot: int, jobs: int) -> dict[str, str]:
    """Environment of the child in ``slot``: one GPU of the visible ones when several jobs share them."""
    if jobs < 2:
        return {}
    from safr_lightning.gpu_slots import visible_gpus

    gpus = visible_gpus()
    return {"CUDA_VISIBLE_DEVICES": gpus[slot % len(gpus)]} if gpus else {}


def run_side_by_side(
    items: Sequence[Item],
    jobs: int,
    command_of: Callable[[Item], tuple[list[str], dict[str, str]]],
    finish: Callable[[Item, subprocess.CompletedProcess], Out],
    grace_s: float = 30.0,
) -> list[Out | None]:
    """Run ``command_of(item)`` (argv, extra environment) for every item, ``jobs`` at a time.

    ``finish(item, completed)`` runs once per child that ended by itself (stderr captured as text),
    one at a time (it may write records and tables and print), and its results come back in the
    order of ``items``. If the main thread is interrupted, no new child starts, every running one is
    stopped, and the exception propagates.
    """
    jobs = max(1, jobs)
    lock = threading.Lock()  # guards `running` and `stopping`
    finish_lock = threading.Lock()  # one `finish` at a time
    running: set[subprocess.Popen] = set()
    stopping = threading.Event()
    slots: queue.SimpleQueue[int] = queue.SimpleQueue()
    for slot in range(jobs):
        slots.put(slot)

    def one(item: Item) -> Out | None:
        argv, extra = command_of(item)
        slot = slots.get()
        try:
            with lock:
                if stopping.is_set():
                    return None
                env = {**os.environ, **extra, **slot_env(slot, jobs)}
                child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                running.add(child)
            try:
                _, stderr = child.communicate()
            finally:
                with lock:
                    running.discard(child)
            if stopping.is_set():
                return None
            with finish_lock:
                return finish(item, subprocess.CompletedProcess(argv, child.returncode, None, stderr))
        finally:
            slots.put(slot)

    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = [pool.submit(one, item) for item in items]
        results = [future.result() for future in futures]
    except BaseException:
        with lock:
            stopping.set()
            children = list(running)
        pool.shutdown(wait=False, cancel_futures=True)
        stop_children(children, grace_s)
        raise
    pool.shutdown()
    return results


def stop_children(children: Sequence[subprocess.Popen], grace_s: float) -> None:
    """SIGTERM each live child, wait up to ``grace_s`` for all, then SIGKILL the rest (also if
    another signal interrupts the wait)."""
    try:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for child in children:
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
