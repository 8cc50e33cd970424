"""Experiment loggers: W&B (default), CSV, or none.

W&B goes online only when credentials exist (``WANDB_API_KEY`` or a ``~/.netrc`` entry) or when
asked (``logger.mode=online`` / ``WANDB_MODE``); otherwise it writes an offline run inside the run
directory and says how to upload it. Nothing is sent anywhere else.
"""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger

log = logging.getLogger(__name__)


def has_wandb_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        auth = netrc.netrc(os.environ.get("NETRC")).authenticators("api.wandb.ai")
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return auth is not None


def wandb_mode(requested: str | None) -> str:
    """The mode to run W&B in: the config's, else ``$WANDB_MODE``, else online only with credentials."""
    if requested:
        return requested
    env = os.environ.get("WANDB_MODE")
    if env in ("online", "offline", "disabled", "dryrun", "run"):
        return {"dryrun": "offline", "run": "online"}.get(env, env)
    return "online" if has_wandb_credentials() else "offline"


def build_loggers(cfg: Any, run_dir: Path, run_name: str, config: dict[str, Any], tags: list[str]) -> list[Logger]:
    """Loggers for ``cfg.logger.name``; ``config`` is the resolved run config sent to W&B."""
    name = cfg.name
    if name == "none":
        return []
    if name == "csv":
        return [CSVLogger(save_dir=str(run_dir), name="", version="csv")]
    mode = wandb_mode(cfg.mode)
    if mode == "offline" and not cfg.mode:
        log.info("W&B: no credentials found, logging offline to %s/wandb", run_dir)
    logger = WandbLogger(
        project=cfg.project,
        entity=cfg.entity,
        group=cfg.group,
        name=run_name,
        tags=sorted(set(tags) | set(cfg.tags)),
        save_dir=str(run_dir),
        mode=mode,
        log_model=cfg.log_model,
        config=config,
    )
    return [logger]


def finish_wandb(run_dir: Path | None = None) -> None:
    """End the W&B run of this job (so multirun jobs never share one) and say how to upload it."""
    try:
        import wandb
    except ImportError:  # pragma: no cover - wandb is a dependency
        return
    run = wandb.run
    if run is None:
        return
    offline = bool(getattr(run.settings, "_offline", False)) or run.settings.mode == "offline"
    wandb.finish()
    if offline and run_dir is not None:
        log.info("W&B offline run saved; upload it with: wandb sync %s", run_dir / "wandb" / "offline-run-*")
