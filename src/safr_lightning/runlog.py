"""``train.log``: a run's log file, opened only once the run dir is the run's own.

Hydra opens a job's log file before the task starts. A job that is then refused (its folder holds
a finished run of another config) would append its refusal to that run's ``train.log``, and a
config error would leave a log file behind. :class:`RunLogHandler` (``hydra.job_logging`` in
``conf/train.yaml``) keeps the records in memory until :func:`open_run_logs` is called, when the run
has claimed its dir (``rundir.claim_run_dir``); a run refused before that writes nothing.
"""

from __future__ import annotations

import logging
import sys


class RunLogHandler(logging.FileHandler):
    """A ``FileHandler`` (append, UTF-8) that holds its records until :meth:`open` is called."""

    def __init__(self, filename: str, mode: str = "a", encoding: str | None = "utf-8") -> None:
        super().__init__(filename, mode=mode, encoding=encoding, delay=True)
        self._held: list[logging.LogRecord] | None = []
        self._failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if self._held is not None:
            self._held.append(record)
            return
        self._write(record)

    def _write(self, record: logging.LogRecord) -> None:
        try:  # FileHandler opens its file outside its own try: a failed open would reach the log call
            super().emit(record)
        except Exception:
            self.handleError(record)

    def open(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # Handler.createLock made it
            held, self._held = self._held, None
            for record in held or []:
                self._write(record)

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):  # a formatting bug: logging's own report
            super().handleError(record)
            return
        # A full disk must not print a "--- Logging error ---" traceback for every later line: say it once.
        if not self._failed:
            self._failed = True
            print(f"warning: cannot write {self.baseFilename}: {error}; logging goes on to the terminal only",
                  file=sys.stderr, flush=True)  # fmt: skip


def open_run_logs() -> None:
    """Open every :class:`RunLogHandler` of the root logger (the run dir is now the run's own)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, RunLogHandler):
            handler.open()
