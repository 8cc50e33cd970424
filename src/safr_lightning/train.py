"""Train SAFR: ``python -m safr_lightning.train dataset=imdb lambda.imp=0.1 lambda.inter=1``.

A thin Hydra entry point around :func:`safr_lightning.experiment.run_training`. A user error
(a bad override, value or data file: :mod:`safr_lightning.cli`) is printed as one line with exit
code 2; in a multirun any failing job is recorded as ``status: failed`` in its ``results.json`` and
the sweep goes on. The config is validated before torch and Lightning are imported, so a typo costs
half a second, not ten.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
import traceback
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from safr_lightning.cli import (
    UserErrorExit,
    raise_received_signal,
    received_signal,
    run_cli,
    signal_cause,
    signals_deferred,
    take_signals,
)
from safr_lightning.config import register_configs, validate
from safr_lightning.errors import ConfigError, RunDirTaken, RunInterrupted, SAFRError, Terminated, first_line
from safr_lightning.files import DiskFull, is_disk_full, write_text_atomic
from safr_lightning.gpu_slots import job_gpu_slot
from safr_lightning.paths import CONFIG_DIR
from safr_lightning.results import read_record, run_identity, write_results
from safr_lightning.resume import finished_results, resolve_resume
from safr_lightning.rundir import check_run_dir, claim_run_dir, hold_run_dir, is_first_process
from safr_lightning.sweep import launch

log = logging.getLogger("safr_lightning.train")
ERROR_FILE = "error.txt"

register_configs()


def _record_failure(
    cfg: DictConfig,
    run_dir: Path,
    exc: BaseException,
    reason: str,
    detail: str | None = None,
    status: str = "failed",
) -> None:
    if not is_first_process():  # under DDP the first process alone writes the run dir's files
        return
    if finished_results(run_dir) is not None:
        log.error("not recording this failure over the finished run in %s: %s", run_dir, reason)
        return  # a failed attempt to resume a finished run must not erase its results
    try:
        identity = run_identity(cfg)
    except Exception:  # a config too broken to describe still gets its failure recorded
        identity = {}
    # Over the run's own "running" record: its fingerprint and overrides still say what the dir holds.
    started = _running_record(run_dir)
    results: dict[str, Any] = {
        **started, **identity, "status": status, "error": type(exc).__name__, "reason": reason, "run_dir": str(run_dir)
    }  # fmt: skip
    try:
        with signals_deferred():  # a signal must not cut this record short
            _write_failure(cfg, run_dir, results, detail)
    except Exception as exc:  # a full disk: the failure itself stays the message the user gets
        log.error("could not record the failure in %s: %s", run_dir, first_line(exc))


def _write_failure(cfg: DictConfig, run_dir: Path, results: dict[str, Any], detail: str | None) -> None:
    claim_run_dir(run_dir, cfg)  # a failure is this run's own: .hydra/ says what was launched
    if detail:
        write_text_atomic(run_dir / ERROR_FILE, detail)
        results["error_file"] = ERROR_FILE
    write_results(run_dir, results)


def _remove_if_empty(run_dir: Path) -> None:
    """Remove the run dir Hydra made for a config that was then refused (nothing was written into it)."""
    with contextlib.suppress(OSError):
        run_dir.rmdir()  # fails, as it should, when the dir holds anything


def _distributed(cfg: DictConfig) -> bool:
    """Does the trainer start more than one process (DDP and friends)?"""
    devices = cfg.trainer.devices
    if OmegaConf.is_list(devices):
        count: int | None = len(devices)
    elif isinstance(devices, int):
        count = devices if devices > 0 else None  # -1: every device
    else:
        text = str(devices)
        count = None if text in ("auto", "-1") else len([d for d in text.split(",") if d.strip()])
    if count is not None:
        return count > 1
    return "ddp" in str(cfg.trainer.strategy)


def _running_record(run_dir: Path) -> dict[str, Any]:
    record = read_record(run_dir)
    if record is None or record.status != "running":
        return {}
    return {k: record.data[k] for k in ("fingerprint", "overrides") if k in record.data}


@dataclasses.dataclass
class _Outcome:
    """How this job ended, for the sweep's summary (written by the job, read by the launcher)."""

    status: str = launch.FAILED
    reason: str = "ended without a word"
    run_dir: Path | None = None

    def set(self, status: str, reason: str = "") -> None:
        self.status, self.reason = status, reason


def run_job(cfg: DictConfig) -> dict[str, Any] | None:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    take_signals()  # idempotent; a joblib/submitit worker never passed through run_cli
    outcome = _Outcome(run_dir=run_dir)
    try:
        return _run_job(cfg, run_dir, hydra_cfg, multirun, outcome)
    finally:
        try:
            if multirun:
                status = launch.INTERRUPTED if received_signal() is not None else outcome.status
                launch.record_outcome(Path(hydra_cfg.sweep.dir), int(hydra_cfg.job.num), status, outcome.reason,
                                      run_dir)  # fmt: skip
        finally:
            if "wandb" in sys.modules:  # a W&B run can only exist if wandb was imported
                from safr_lightning.loggers import finish_wandb

                finish_wandb(run_dir)


def _run_job(
    cfg: DictConfig, run_dir: Path, hydra_cfg: Any, multirun: bool, outcome: _Outcome
) -> dict[str, Any] | None:
    raise_received_signal()  # one that Hydra's composing swallowed: stop before the job starts
    if not multirun:  # a bad value costs one line and leaves no run folder behind
        try:
            search = hydra_cfg.runtime.choices.get("hparams_search")
            if search not in (None, "null"):
                raise ConfigError(
                    f"hparams_search={search} is a study of many runs: add -m "
                    f"(python -m safr_lightning.train -m hparams_search={search})"
                )
            validate(cfg)
            resolve_resume(cfg.ckpt_path, run_dir)
        except SAFRError as exc:
            _remove_if_empty(run_dir)
            raise UserErrorExit(exc) from exc
    try:
        check_run_dir(run_dir, launched_from=Path(hydra_cfg.runtime.cwd))
    except SAFRError as exc:  # nothing can be recorded there
        outcome.set(launch.FAILED, str(exc))
        if multirun:
            log.error("job failed: %s", exc)
            return None
        raise UserErrorExit(exc) from exc
    try:
        # Held across the failure record too: nobody else writes this dir's results.json meanwhile.
        with hold_run_dir(run_dir):
            results = _run_held(cfg, run_dir, hydra_cfg, multirun, outcome)
    except RunDirTaken as exc:  # another run's dir: its files are not ours to touch
        outcome.set(launch.REFUSED, str(exc))
        if multirun:
            log.error("job not run: %s", exc)
            return None
        raise UserErrorExit(exc) from exc
    except UserErrorExit as stop:
        interrupted = isinstance(stop.error, RunInterrupted)
        outcome.set(launch.INTERRUPTED if interrupted else launch.FAILED, str(stop.error))
        raise
    except Exception as exc:  # taking or leaving the lock failed (a full disk): nothing ran
        error = _as_user_error(exc, run_dir)
        if error is None:
            raise
        outcome.set(launch.FAILED, str(error))
        _record_failure(cfg, run_dir, error, str(error))
        if multirun:  # the other jobs still run, and the summary still comes
            log.error("job failed: %s", error)
            return None
        raise UserErrorExit(error) from exc
    if results is not None and results.get("status") == "ok":
        outcome.set(launch.OK)
    return results


def _as_user_error(exc: BaseException, run_dir: Path) -> SAFRError | None:
    """What ``exc`` means for the person at the keyboard; None for a bug (which keeps its traceback).

    A received signal wins over whatever exception it surfaced as (a data error, a library's
    ``AttributeError`` from a cleanup that the signal's exception passed through).
    """
    if received_signal() is not None or isinstance(exc, (KeyboardInterrupt, Terminated)):
        if isinstance(exc, RunInterrupted):
            return exc
        cause, code = signal_cause(exc)
        error: SAFRError = RunInterrupted(f"interrupted by {cause} while starting; run it again", code)
    elif isinstance(exc, SAFRError):
        return exc
    elif is_disk_full(exc):
        assert isinstance(exc, OSError)
        error = DiskFull(exc.filename or run_dir, exc)
    else:
        return None
    error.__cause__ = exc  # --verbose shows where it came from
    return error


def _run_held(
    cfg: DictConfig, run_dir: Path, hydra_cfg: Any, multirun: bool, outcome: _Outcome
) -> dict[str, Any] | None:
    try:
        validate(cfg)
        resolve_resume(cfg.ckpt_path, run_dir)
        if multirun and _distributed(cfg):
            raise ConfigError(
                f"invalid config: trainer.strategy={cfg.trainer.strategy} with trainer.devices={cfg.trainer.devices} "
                "inside -m: Lightning starts each extra process with the whole command line, so the sweep would "
                "run again; sweep with hydra/launcher=joblib (trainer=gpu, one GPU per job) or SLURM, one task per GPU"
            )
        from safr_lightning.experiment import run_training  # torch, Lightning: only for a valid config

        with job_gpu_slot(cfg, hydra_cfg):  # one GPU per job in a joblib sweep on a multi-GPU box
            return run_training(cfg, run_dir)
    except RunDirTaken:
        raise
    except BaseException as exc:
        if isinstance(exc, SystemExit) and received_signal() is None:
            raise
        # A second signal must not cut the record of how this one ended short: it waits until
        # the record is written (and is then reported like the first).
        with signals_deferred():
            error = _classify_and_record(cfg, run_dir, exc)
        outcome.set(launch.FAILED, str(error) if error is not None else f"{type(exc).__name__}: {exc}")
        if error is None:
            if multirun:  # one broken job must not take the other jobs of the sweep with it
                log.exception("job failed; see %s", run_dir / ERROR_FILE)
                return None
            raise
        if isinstance(error, RunInterrupted):
            raise UserErrorExit(error) from None  # in a multirun too: whoever stopped this job stopped the sweep
        if multirun:
            log.error("job failed: %s", error)
            return None
        raise UserErrorExit(error) from exc  # run_cli prints it as one line


def _classify_and_record(cfg: DictConfig, run_dir: Path, exc: BaseException) -> SAFRError | None:
    """Record ``exc`` in the run dir; return it as the user's error, or None for a bug (traceback kept)."""
    error = _as_user_error(exc, run_dir)
    if error is None:  # a bug: its traceback is kept in error.txt
        _record_failure(cfg, run_dir, exc, f"{type(exc).__name__}: {exc}", traceback.format_exc())
    elif isinstance(error, RunInterrupted):
        _record_failure(cfg, run_dir, error, str(error), status="interrupted")
    else:
        _record_failure(cfg, run_dir, error, str(error))
    return error


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> Any:
    return run_job(cfg)


def main() -> Any:
    """``python -m safr_lightning.train [--verbose] key=value ...`` (and the ``safr-train`` script).

    A sweep (``-m``) exits 0 only when every job it launched ended ok: otherwise one summary line
    and exit code 1, after all jobs ran (:mod:`safr_lightning.sweep.launch`).
    """
    launch.LAST.summary = None
    try:
        result = run_cli(_hydra_main)
    finally:
        launch.end_launch()  # a stopped sweep leaves no outcome files behind either
    if launch.LAST.summary is not None:
        if launch.LAST.exit_code != 0:
            print(f"error: {launch.LAST.summary}", file=sys.stderr, flush=True)
            sys.exit(launch.LAST.exit_code)
        print(launch.LAST.summary, flush=True)
    return result


if __name__ == "__main__":
    main()
