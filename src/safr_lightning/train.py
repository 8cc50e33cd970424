"""Train SAFR: ``python -m safr_lightning.train dataset=imdb lambda.imp=0.1 lambda.inter=1``.

A thin Hydra entry point around :func:`safr_lightning.experiment.run_training`. A user error
(:class:`~safr_lightning.errors.SAFRError`) is printed as one line with exit code 2; in a multirun
any failing job is recorded as ``status: failed`` in its ``results.json`` and the sweep goes on.
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from safr_lightning.config import CONFIG_DIR, register_configs
from safr_lightning.errors import SAFRError
from safr_lightning.experiment import run_training
from safr_lightning.gpu_slots import job_gpu_slot
from safr_lightning.loggers import finish_wandb
from safr_lightning.results import run_identity, write_results

log = logging.getLogger("safr_lightning.train")

register_configs()


def _record_failure(cfg: DictConfig, run_dir: Path, reason: str, detail: str | None = None) -> None:
    try:
        identity = run_identity(cfg)
    except Exception:  # a config too broken to describe still gets its failure recorded
        identity = {}
    results: dict[str, Any] = {**identity, "status": "failed", "reason": reason, "run_dir": str(run_dir)}
    if detail:
        (run_dir / "error.txt").write_text(detail)
        results["error_file"] = "error.txt"
    write_results(run_dir, results)


def run_job(cfg: DictConfig) -> dict[str, Any] | None:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        with job_gpu_slot(cfg, hydra_cfg):  # one GPU per job in a joblib sweep on a multi-GPU box
            return run_training(cfg, run_dir)
    except SAFRError as exc:
        _record_failure(cfg, run_dir, str(exc))
        if multirun:
            log.error("job failed: %s", exc)
            return None
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:
        _record_failure(cfg, run_dir, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        if multirun:  # one broken job must not take the other jobs of the sweep with it
            log.exception("job failed; see %s", run_dir / "error.txt")
            return None
        raise
    finally:
        finish_wandb(run_dir)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> Any:
    return run_job(cfg)


if __name__ == "__main__":
    main()
