"""Train SAFR: ``python -m safr_lightning.train dataset=imdb lambda.imp=0.1 lambda.inter=1``.

A thin Hydra entry point around :func:`safr_lightning.experiment.run_training`. A user error
(a bad override, value or data file: :mod:`safr_lightning.cli`) is printed as one line with exit
code 2; in a multirun any failing job is recorded as ``status: failed`` in its ``results.json`` and
the sweep goes on. The config is validated before torch and Lightning are imported, so a typo costs
half a second, not ten.
"""

from __future__ import annotations

import logging
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from safr_lightning.cli import UserErrorExit, run_cli, take_signals
from safr_lightning.config import register_configs, validate
from safr_lightning.errors import ConfigError, RunDirTaken, RunInterrupted, SAFRError, Terminated
from safr_lightning.gpu_slots import job_gpu_slot
from safr_lightning.paths import CONFIG_DIR
from safr_lightning.results import read_record, run_identity, write_results
from safr_lightning.resume import finished_results, resolve_resume
from safr_lightning.rundir import check_run_dir, hold_run_dir, is_first_process

log = logging.getLogger("safr_lightning.train")

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
        if detail:
            (run_dir / "error.txt").write_text(detail)
            results["error_file"] = "error.txt"
        write_results(run_dir, results)
    except OSError as exc:  # the failure itself stays the message the user gets
        log.error("could not record the failure in %s: %s", run_dir, exc)


# What Hydra writes into a run dir before the task starts.
HYDRA_ONLY = frozenset({".hydra", "train.log"})


def _remove_if_only_hydras(run_dir: Path) -> None:
    """Remove a run dir that holds nothing but what Hydra wrote for this launch (a refused config)."""
    try:
        names = {p.name for p in run_dir.iterdir()}
    except OSError:
        return
    log_file = run_dir / "train.log"
    empty_log = not log_file.exists() or log_file.stat().st_size == 0
    if names <= HYDRA_ONLY and empty_log:
        shutil.rmtree(run_dir, ignore_errors=True)


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


def run_job(cfg: DictConfig) -> dict[str, Any] | None:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    take_signals()  # idempotent; a joblib/submitit worker never passed through run_cli
    if not multirun:  # a bad value costs one line and leaves no run folder behind
        try:
            validate(cfg)
            resolve_resume(cfg.ckpt_path, run_dir)
        except SAFRError as exc:
            _remove_if_only_hydras(run_dir)
            raise UserErrorExit(exc) from exc
    try:
        check_run_dir(run_dir, launched_from=Path(hydra_cfg.runtime.cwd))
    except SAFRError as exc:  # nothing can be recorded there
        if multirun:
            log.error("job failed: %s", exc)
            return None
        raise UserErrorExit(exc) from exc
    try:
        # Held across the failure record too: nobody else writes this dir's results.json meanwhile.
        with hold_run_dir(run_dir):
            return _run_held(cfg, run_dir, hydra_cfg, multirun)
    except RunDirTaken as exc:  # another run's dir: its files are not ours to touch
        if multirun:
            log.error("job not run: %s", exc)
            return None
        raise UserErrorExit(exc) from exc
    finally:
        if "wandb" in sys.modules:  # a W&B run can only exist if wandb was imported
            from safr_lightning.loggers import finish_wandb

            finish_wandb(run_dir)


def _run_held(cfg: DictConfig, run_dir: Path, hydra_cfg: Any, multirun: bool) -> dict[str, Any] | None:
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
    except (KeyboardInterrupt, Terminated) as stop:  # before the run's own handling (its imports)
        cause, code = ("Ctrl-C", 130) if isinstance(stop, KeyboardInterrupt) else ("SIGTERM", 143)
        exc = RunInterrupted(f"interrupted by {cause} while starting; run it again", code)
        _record_failure(cfg, run_dir, exc, str(exc), status="interrupted")
        raise UserErrorExit(exc) from None
    except RunInterrupted as exc:
        _record_failure(cfg, run_dir, exc, str(exc), status="interrupted")
        raise UserErrorExit(exc) from exc  # in a multirun too: whoever stopped this job stopped the sweep
    except SAFRError as exc:
        _record_failure(cfg, run_dir, exc, str(exc))
        if multirun:
            log.error("job failed: %s", exc)
            return None
        raise UserErrorExit(exc) from exc  # run_cli prints it as one line
    except Exception as exc:
        _record_failure(cfg, run_dir, exc, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        if multirun:  # one broken job must not take the other jobs of the sweep with it
            log.exception("job failed; see %s", run_dir / "error.txt")
            return None
        raise


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> Any:
    return run_job(cfg)


def main() -> Any:
    """``python -m safr_lightning.train [--verbose] key=value ...`` (and the ``safr-train`` script)."""
    return run_cli(_hydra_main)


if __name__ == "__main__":
    main()
