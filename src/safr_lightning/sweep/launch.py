"""How a sweep launch ended: each job's outcome, one summary line, and the sweep's exit code.

A multirun exits 0 only when every job it launched finished ``ok`` (a finished job that a relaunch
kept counts as ok). Otherwise, after all jobs ran, it prints one line, e.g.::

    error: sweep: 4 jobs: 2 ok, 1 failed, 1 refused; tables: make table SWEEP_DIR=multirun/...

and exits :data:`EXIT_JOBS_FAILED`. Jobs may run in other processes (joblib, SLURM), so each job
writes its outcome as a small file, ``<sweep dir>/.launches/<launch id>/<job number>.json``, which
the launching process reads (and removes) when the sweep ends (:class:`LaunchSummary`, a Hydra
callback named in ``conf/train.yaml``). The launch id reaches the jobs through
``<sweep dir>/.launches/current`` (a reused worker process may carry an older environment) and,
failing that, the environment (:data:`LAUNCH_ENV`). A job without an outcome file (killed, say) is
judged by its folder, as ``make table`` judges it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from safr_lightning.files import write_text_atomic
from safr_lightning.sweep.jobs import plural

log = logging.getLogger(__name__)

LAUNCH_ENV = "SAFR_SWEEP_LAUNCH"
LAUNCHES_DIR = ".launches"
EXIT_JOBS_FAILED = 1
# A job's outcome: how its run ended, as the launch saw it.
OK, FAILED, REFUSED, INTERRUPTED, UNKNOWN = "ok", "failed", "refused", "interrupted", "did not finish"
ORDER = (OK, FAILED, REFUSED, INTERRUPTED, UNKNOWN)


@dataclass(frozen=True)
class Outcome:
    num: int
    status: str
    reason: str = ""
    run_dir: str = ""


CURRENT = "current"


def launch_id(sweep_dir: Path) -> str | None:
    """The id of the launch running ``sweep_dir``'s jobs: its file, else the environment's."""
    try:
        current = (sweep_dir / LAUNCHES_DIR / CURRENT).read_text().strip()
    except OSError:
        current = ""
    return current or os.environ.get(LAUNCH_ENV) or None


def record_outcome(sweep_dir: Path, num: int, status: str, reason: str = "", run_dir: Path | None = None) -> None:
    """Write job ``num``'s outcome for the launch that started it (a no-op outside a launch).

    Never raises: a full disk here must not turn the job's own outcome into another error (its
    results.json still says how it ended, and the summary then reads the folder).
    """
    try:
        launch = launch_id(sweep_dir)
        if launch is None:
            return
        record = {"num": num, "status": status, "reason": reason, "run_dir": str(run_dir or "")}
        write_text_atomic(sweep_dir / LAUNCHES_DIR / launch / f"{num}.json", json.dumps(record) + "\n")
    except Exception as exc:
        log.warning("could not record job %s's outcome in %s: %s", num, sweep_dir, exc)


def read_outcomes(sweep_dir: Path, launch: str) -> dict[int, Outcome]:
    found: dict[int, Outcome] = {}
    for path in sorted((sweep_dir / LAUNCHES_DIR / launch).glob("*.json")):
        try:
            data = json.loads(path.read_text())
            found[int(data["num"])] = Outcome(int(data["num"]), str(data["status"]), str(data.get("reason", "")),
                                              str(data.get("run_dir", "")))  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a file the job could not finish: judged by its folder instead
    return found


def launch_outcomes(sweep_dir: Path, launch: str, launched: int | None) -> list[Outcome]:
    """Every job of the launch: its outcome file, else what its folder says (``collect_jobs``)."""
    from safr_lightning.sweep import jobs as sweep_jobs

    outcomes = read_outcomes(sweep_dir, launch)
    root = sweep_dir.resolve()
    asked = {
        job.num: job
        for job in sweep_jobs.collect_jobs(sweep_dir)
        if job.num is not None and job.sweep_root is not None and job.sweep_root.resolve() == root
    }
    numbers = set(range(launched)) if launched is not None else set(asked) | set(outcomes)
    result = []
    for num in sorted(numbers):
        if num in outcomes:
            result.append(outcomes[num])
            continue
        job = asked.get(num)
        if job is not None and job.status == sweep_jobs.OK:
            result.append(Outcome(num, OK, "", str(job.dir or "")))
        elif job is not None and job.status == sweep_jobs.FAILED:
            result.append(Outcome(num, FAILED, job.reason, str(job.dir or "")))
        else:
            result.append(Outcome(num, UNKNOWN, job.reason if job is not None else "no record"))
    return result


def summary_line(outcomes: list[Outcome], sweep_dir: Path) -> str:
    counts = Counter(o.status for o in outcomes)
    parts = [f"{counts[s]} {s}" for s in ORDER if counts[s] or s in (OK, FAILED)]
    return f"sweep: {plural(len(outcomes), 'job')}: {', '.join(parts)}; tables: make table SWEEP_DIR={sweep_dir}"


STUDY_SWEEPER = "safr_pareto_sweeper"


def study_summary_line(outcomes: list[Outcome], sweep_dir: Path, no_objective: int = 0) -> str:
    counts = Counter(o.status for o in outcomes)
    parts = [f"{counts[s]} {s}" for s in ORDER if counts[s] or s in (OK, FAILED)]
    parts += [f"{no_objective} without objectives"] if no_objective else []
    ran = f"{plural(len(outcomes), 'trial')} in this launch: {', '.join(parts)}" if outcomes else \
        "no trial to run (the study has its n_trials)"  # fmt: skip
    return f"study: {ran}; report: python -m safr_lightning.search {sweep_dir}"


@dataclass
class _Launch:
    sweep_dir: Path | None = None
    id: str | None = None
    summary: str | None = None
    exit_code: int = 0
    failed_by_sweeper: int = 0  # trials a study's sweeper failed although their job ended (no objective)


# The launch this process started last (the CLI reads its exit code after Hydra returns).
LAST = _Launch()


class LaunchSummary(Callback):
    """Hydra callback: give the launch an id, and when the sweep ends, summarize and set the exit code."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        LAST.sweep_dir = Path(str(config.hydra.sweep.dir))
        LAST.id = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**9}"
        LAST.summary, LAST.exit_code, LAST.failed_by_sweeper = None, 0, 0
        os.environ[LAUNCH_ENV] = LAST.id
        try:
            write_text_atomic(LAST.sweep_dir / LAUNCHES_DIR / CURRENT, LAST.id + "\n")
        except Exception as exc:  # the environment still carries it to most launchers
            log.warning("could not write %s: %s", LAST.sweep_dir / LAUNCHES_DIR / CURRENT, exc)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if LAST.sweep_dir is None or LAST.id is None:
            return
        if STUDY_SWEEPER in str(OmegaConf.select(config, "hydra.sweeper._target_", default="")):
            # A study's trials are numbered across launches and it alone knows which it started: this
            # launch's outcome files (a relaunch of a finished study starts none, and that is fine).
            outcomes = sorted(read_outcomes(LAST.sweep_dir, LAST.id).values(), key=lambda o: o.num)
            LAST.summary = study_summary_line(outcomes, LAST.sweep_dir, LAST.failed_by_sweeper)
            ok = all(o.status == OK for o in outcomes) and not LAST.failed_by_sweeper
            LAST.exit_code = 0 if ok else EXIT_JOBS_FAILED
            end_launch()
            return
        outcomes = launch_outcomes(LAST.sweep_dir, LAST.id, None)
        LAST.summary = summary_line(outcomes, LAST.sweep_dir)
        LAST.exit_code = 0 if outcomes and all(o.status == OK for o in outcomes) else EXIT_JOBS_FAILED
        # One line (printed by the CLI); each job said why it failed when it did, and make table lists them.
        end_launch()


def end_launch() -> None:
    """Remove the launch's outcome files (after its summary, or when the sweep was stopped)."""
    if LAST.sweep_dir is None or LAST.id is None:
        return
    launches = LAST.sweep_dir / LAUNCHES_DIR
    shutil.rmtree(launches / LAST.id, ignore_errors=True)
    current = launches / CURRENT
    try:
        if current.read_text().strip() == LAST.id:
            current.unlink()
    except OSError:
        pass
    if launches.is_dir() and not any(launches.iterdir()):
        launches.rmdir()
    if os.environ.get(LAUNCH_ENV) == LAST.id:
        os.environ.pop(LAUNCH_ENV, None)
    LAST.id = None
