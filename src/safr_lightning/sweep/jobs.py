"""What a sweep directory holds: the jobs it asked for, the jobs that ran, and how each one ended.

A Hydra multirun leaves ``multirun.yaml`` (the master config: the sweeper's ``params`` and the
command line) in the sweep root and, per job, ``.hydra/overrides.yaml`` (the job's overrides) and,
when the job got that far, ``results.json``. The expected jobs are recomputed exactly as Hydra's
basic sweeper expands them; a job is matched to its folder by its overrides. Reading only: nothing
here writes.
"""

from __future__ import annotations

import logging
import re
import shlex
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from safr_lightning.errors import first_line
from safr_lightning.fidelity import shared_keys
from safr_lightning.results import RESULTS_FILE, ResultsUnreadable, load_record
from safr_lightning.rundir import NEUTRAL_KEYS

log = logging.getLogger(__name__)

MULTIRUN_FILE = "multirun.yaml"
OVERRIDES_FILE = Path(".hydra") / "overrides.yaml"
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
# Keys that say which table cell a job fills (row, seed, dataset). Any other override that differs
# between jobs makes a configuration of its own, so that different settings are never averaged.
IDENTITY_KEYS = frozenset(
    {"seed", "dataset", "row", "model", "lambda", "lambda.imp", "lambda.inter", "sweep", "sweep_name"}
)

# The fidelity group and the keys every fidelity preset sets: results.json's fidelity mode names them
# (a key only one preset sets, e.g. dataset.strip_html_breaks, stays a variant).
FIDELITY_KEYS = frozenset({"fidelity", *shared_keys()})

# Overrides that change neither training nor metrics (rundir.NEUTRAL_KEYS, the keys the config
# fingerprint leaves out): a job re-run with them (resumed from its last checkpoint, without a
# progress bar, logging elsewhere) still fills the cell it was asked for.

OK, FAILED, MISSING = "ok", "failed", "missing"
# A run in a sweep folder that the folder's launch (its multirun.yaml) did not ask for: an earlier
# launch into the same folder with another config. Listed, never tabled (nor under the launch's rows).
OTHER_LAUNCH = "other launch"
# Failures that a re-run with the same seed would repeat.
DETERMINISTIC_FAILURES = frozenset({"NonFiniteLossError"})
_PLAIN_PATH = re.compile(r"[\w./:+-]+")  # what Hydra takes unquoted as an override value


@dataclass(frozen=True)
class ExpectedJob:
    num: int
    overrides: tuple[str, ...]
    dataset: str | None


@dataclass
class Job:
    """One job of a sweep: asked for (``num``), run (``dir``), or both."""

    num: int | None
    overrides: tuple[str, ...]
    dir: Path | None
    results: dict[str, Any] | None
    status: str  # ok | failed | missing
    reason: str
    dataset: str | None
    variant: tuple[str, ...] = ()
    sweep_root: Path | None = None  # the multirun folder that asked for this job

    def label(self, root: Path) -> str:
        if self.dir is not None:
            return self.dir.relative_to(root).as_posix() if self.dir.is_relative_to(root) else str(self.dir)
        return f"job {self.num}"

    def rerun_command(self) -> str | None:
        """The shell command that runs this job of its sweep again, into a folder the table reads.

        For a job that went missing or failed, once the sweep has stopped (a job still running
        counts as missing too). A job that left a last checkpoint resumes from it in its own folder;
        otherwise it starts afresh there (or in a new folder beside the others). None for a job the
        sweep did not ask for, a finished one, or one stopped by a non-finite loss (the same seed
        would diverge the same way).
        """
        if self.num is None or self.sweep_root is None or self.status == OK:
            return None
        if self.status == FAILED and (self.results or {}).get("error") in DETERMINISTIC_FAILURES:
            return None
        run_dir = (self.dir if self.dir is not None else self.sweep_root / f"{self.num}_rerun").resolve()
        path = str(run_dir) if _PLAIN_PATH.fullmatch(str(run_dir)) else f"'{run_dir}'"  # quoted for Hydra
        if (run_dir / "checkpoints" / "last.ckpt").is_file():
            where = f"ckpt_path={path}"
        else:
            where = f"hydra.run.dir={path}"
        # The sweep's own ckpt_path (e.g. `last`) is replaced by where this job continues.
        kept = [o for o in self.overrides if _key(_parse([o])[0]) != "ckpt_path"]
        # Quoted for the shell, so every override reaches Hydra as the string the sweep recorded.
        return shlex.join(["python", "-m", "safr_lightning.train", *kept, where])


def _parse(overrides: list[str]) -> list[Any]:
    return OverridesParser.create().parse_overrides(overrides)


def _key(override: Any) -> str:
    """``+row`` and ``row`` name the same thing here; the prefix only tells Hydra how to compose it."""
    return str(override.get_key_element()).lstrip("+~")


def _identity(key: str) -> bool:
    """Keys a row already tells apart: the cell's own, and the fidelity (the row's mode names it)."""
    key = key.split("@")[0]
    return key in IDENTITY_KEYS or key in FIDELITY_KEYS or key.startswith("fidelity.")


def _neutral(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in NEUTRAL_KEYS)


def cell_overrides(overrides: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``overrides`` without the neutral ones, sorted: what matches a job folder to a job asked for."""
    parsed = _parse(list(overrides))
    return tuple(sorted(o for o, p in zip(overrides, parsed, strict=True) if not _neutral(_key(p))))


def override_dict(overrides: tuple[str, ...] | list[str]) -> dict[str, str]:
    return {_key(o): str(o.get_value_element_as_str()) for o in _parse(list(overrides))}


def expected_jobs(sweep_root: Path) -> list[ExpectedJob] | None:
    """The jobs ``multirun.yaml`` asked for, numbered as Hydra numbered them; None if unknowable."""
    path = sweep_root / MULTIRUN_FILE
    if not path.is_file():
        return None
    try:
        master = OmegaConf.load(path)
        if not OmegaConf.is_dict(master):
            raise ValueError("not a mapping")
    except Exception as exc:  # a corrupt file: the jobs found on disk are still tabled
        reason = first_line(exc)
        log.warning("unreadable %s (%s): the jobs it asked for are unknown; listing those found", path, reason)
        return None
    sweeper = OmegaConf.select(master, "hydra.sweeper._target_")
    if sweeper != BASIC_SWEEPER:  # another sweeper (optuna, ...) decides its jobs as it goes
        return None
    params = OmegaConf.select(master, "hydra.sweeper.params") or {}
    task = list(OmegaConf.select(master, "hydra.overrides.task") or [])
    lines = [f"{key}={value}" for key, value in params.items()] + [str(t) for t in task]
    batches = BasicSweeper.split_arguments(_parse(lines), max_batch_size=None)
    default_dataset = OmegaConf.select(master, "dataset.name", default=None)
    jobs = []
    for num, overrides in enumerate(job for batch in batches for job in batch):
        dataset = override_dict(overrides).get("dataset", default_dataset)
        jobs.append(ExpectedJob(num, tuple(overrides), dataset))
    return jobs


def _read_results(run_dir: Path) -> tuple[dict[str, Any] | None, str]:
    path = run_dir / RESULTS_FILE
    if not path.is_file():
        return None, "no results.json (the job was killed, or is still running)"
    try:
        return dict(load_record(path).data), ""
    except ResultsUnreadable as exc:
        return None, str(exc)


def _has_identity(results: dict[str, Any]) -> bool:
    lam = results.get("lambda")
    return (
        bool(results.get("dataset")) and "model" in results and isinstance(lam, dict) and {"imp", "inter"} <= set(lam)
    )


def _job_from_dir(run_dir: Path, num: int | None, overrides: tuple[str, ...], dataset: str | None = None) -> Job:
    results, problem = _read_results(run_dir)
    if results is None:
        status, reason = (FAILED if problem.startswith("unreadable") else MISSING), problem
    elif results.get("status") == OK and not _has_identity(results):
        status, reason = FAILED, "results.json lacks the run's identity (dataset, model, lambda.imp/inter)"
    elif results.get("status") == OK:
        status, reason = OK, ""
    elif results.get("status") == FAILED:
        status, reason = FAILED, str(results.get("reason") or "no reason recorded")
    else:  # interrupted (it says why), or a run still going
        status = MISSING
        said = f"results.json says status={results.get('status')!r} (killed, or still running)"
        reason = str(results.get("reason") or said)
    if results is not None and results.get("dataset"):
        dataset = str(results["dataset"])
    return Job(num, overrides, run_dir, results, status, reason, dataset)


def _sweep_roots(sweep_dir: Path) -> list[Path]:
    return sorted(p.parent for p in sweep_dir.rglob(MULTIRUN_FILE))


def _job_overrides(run_dir: Path) -> tuple[str, ...]:
    """The overrides the folder's run was trained with: results.json's own record, else ``.hydra``'s.

    Hydra rewrites ``.hydra/overrides.yaml`` at every launch into the folder, also one that was then
    refused (the folder held another config's finished run): the results' record is what ran.
    """
    results, _ = _read_results(run_dir)
    recorded = (results or {}).get("overrides")
    if isinstance(recorded, list) and all(isinstance(o, str) for o in recorded):
        try:
            cell_overrides(recorded)
            return tuple(recorded)
        except Exception:  # an override this Hydra cannot parse: fall back to the folder's record
            pass
    path = run_dir / OVERRIDES_FILE
    if not path.is_file():
        return ()
    try:
        loaded = OmegaConf.load(path)
    except Exception as exc:  # a corrupt file: the job is listed, not a traceback
        log.warning("unreadable %s (%s): the job's overrides are unknown", path, first_line(exc))
        return ()
    return tuple(str(o) for o in loaded) if OmegaConf.is_list(loaded) else ()


def collect_jobs(sweep_dir: Path) -> list[Job]:
    """Every job under ``sweep_dir``: expected by a ``multirun.yaml`` below it, or holding results."""
    run_dirs = {p.parent for p in sweep_dir.rglob(RESULTS_FILE)}
    run_dirs |= {p.parent.parent for p in sweep_dir.rglob(OVERRIDES_FILE.name) if p.parent.name == ".hydra"}
    by_overrides: dict[tuple[str, ...], list[Path]] = defaultdict(list)
    for run_dir in sorted(run_dirs):
        by_overrides[cell_overrides(_job_overrides(run_dir))].append(run_dir)

    jobs: list[Job] = []
    claimed: set[Path] = set()
    launches: dict[Path, list[ExpectedJob]] = {}
    for root in _sweep_roots(sweep_dir):
        expected = expected_jobs(root)
        if expected is not None:
            launches[root] = expected
        for exp in expected or []:
            candidates = [
                d
                for d in by_overrides.get(cell_overrides(exp.overrides), [])
                if d not in claimed and d.is_relative_to(root)
            ]
            if candidates:
                # Hydra's own folder for this job number first, then the newest run of the same job.
                chosen = max(candidates, key=lambda d: (d.name.startswith(f"{exp.num}_"), _mtime(d)))
                claimed.add(chosen)
                job = _job_from_dir(chosen, exp.num, exp.overrides, exp.dataset)
            else:
                job = Job(exp.num, exp.overrides, None, None, MISSING, "never started", exp.dataset)
            job.sweep_root = root
            jobs.append(job)
    claimed_cells = {cell_overrides(job.overrides): job.dir for job in jobs if job.dir is not None}
    for run_dir in sorted(run_dirs - claimed):
        job = _job_from_dir(run_dir, None, _job_overrides(run_dir))
        root = next((r for r in sorted(launches, key=lambda r: -len(r.parts)) if run_dir.is_relative_to(r)), None)
        # Unknown overrides (a corrupt .hydra/ of an old version) cannot be told apart: tabled as found.
        if root is not None and job.overrides:
            cell = cell_overrides(job.overrides)
            if cell in claimed_cells:  # the same job ran again (a relaunch that renumbered the jobs)
                superseded_by = claimed_cells[cell]
                where = superseded_by.name if superseded_by is not None else "another folder"
                job.status, job.reason = OTHER_LAUNCH, f"an earlier run of the same job, superseded by {where}"
                job.sweep_root = root
            elif _config_part(job.overrides) not in {_config_part(e.overrides) for e in launches[root]}:
                # Another config than any the folder's launch asked for: never under the launch's labels.
                job.status, job.reason = OTHER_LAUNCH, _not_asked(job.overrides, launches[root], job.status, job.reason)
                job.sweep_root = root
            # else: the same config as the launch, another seed or row (a relaunch of part of the sweep)
        jobs.append(job)
    _assign_variants(jobs)
    return jobs


def _config_part(overrides: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """A job's overrides without those that name its cell (seed, dataset, row, λ, fidelity) or change nothing."""
    cell = cell_overrides(overrides)
    return tuple(o for o, p in zip(cell, _parse(list(cell)), strict=True) if not _identity(_key(p)))


def _mtime(run_dir: Path) -> float:
    try:
        return (run_dir / RESULTS_FILE).stat().st_mtime
    except OSError:
        return 0.0


def _not_asked(overrides: tuple[str, ...], asked: list[ExpectedJob], status: str, reason: str) -> str:
    """Why a run is not tabled: how its overrides differ from the nearest job the launch asked for."""
    mine = set(cell_overrides(overrides))
    nearest = max(asked, key=lambda e: len(mine & set(cell_overrides(e.overrides))), default=None)
    ended = f"it ended {status}" + (f" ({reason})" if reason and status != OK else "")
    if nearest is None:
        return f"not asked for by this folder's launch (multirun.yaml asks for no jobs); {ended}"
    theirs = set(cell_overrides(nearest.overrides))
    ran = " ".join(sorted(mine - theirs)) or "(none)"
    wanted = " ".join(sorted(theirs - mine)) or "(none)"
    return (
        f"a run of an earlier launch with another config, not tabled: trained with {ran} where this folder's "
        f"launch (multirun.yaml) asks for {wanted}; {ended}"
    )


def _assign_variants(jobs: list[Job]) -> None:
    """Mark each job with the non-identity overrides that are not the same across all jobs."""
    parsed = [override_dict(job.overrides) for job in jobs]
    keys = {k for d in parsed for k in d if not _identity(k) and not _neutral(k)}
    varying = sorted(k for k in keys if len({d.get(k) for d in parsed}) > 1)
    for job, d in zip(jobs, parsed, strict=True):
        job.variant = tuple(f"{k}={d[k]}" for k in varying if k in d)


def newest_sweep(base: Path) -> Path | None:
    """The sweep under ``base`` whose ``multirun.yaml`` was written last."""
    candidates = list(base.rglob(MULTIRUN_FILE)) if base.is_dir() else []
    return max(candidates, key=lambda p: p.stat().st_mtime).parent if candidates else None


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
