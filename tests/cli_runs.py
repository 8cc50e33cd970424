"""Run ``python -m safr_lightning.train`` in subprocesses, several at once.

Each CLI process spends seconds importing torch and Lightning, mostly waiting; running a batch
of them side by side keeps the bad-input tests (one subprocess per input) cheap in wall time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor

from tests.conftest import REPO, SUBPROCESS_ENV

# One intra-op thread: on a busy 2-core machine, two threads per tiny process spin against each
# other and a tiny run gets ~20x slower. Every run of a comparison uses the same setting.
CLI_ENV = SUBPROCESS_ENV


def run_train(*args: str, env: dict[str, str | None] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run the train CLI; ``env`` values of None remove the variable."""
    merged = {**os.environ, **CLI_ENV, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "safr_lightning.train", *args],
        cwd=REPO,
        env={k: v for k, v in merged.items() if v is not None},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _default_sigint() -> None:
    # A shell without job control starts background jobs with SIGINT ignored, and the child would
    # inherit that (CI run with `&`); with the default disposition Python turns it into Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_train(*args: str, env: dict[str, str | None] | None = None) -> subprocess.Popen:
    """Start the train CLI without waiting (to kill or interrupt it later)."""
    merged = {**os.environ, **CLI_ENV, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "safr_lightning.train", *args],
        cwd=REPO,
        env={k: v for k, v in merged.items() if v is not None},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


class CLIBatch:
    """Submit CLI runs by name now, collect each result when its test asks for it."""

    def __init__(self, workers: int = 3) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers)
        self._runs: dict[str, Future[subprocess.CompletedProcess]] = {}

    def submit(self, name: str, *args: str, env: dict[str, str | None] | None = None) -> None:
        self._runs[name] = self._pool.submit(run_train, *args, env=env)

    def result(self, name: str) -> subprocess.CompletedProcess:
        return self._runs[name].result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    """The non-empty lines of stderr."""
    return [line for line in proc.stderr.splitlines() if line.strip()]
