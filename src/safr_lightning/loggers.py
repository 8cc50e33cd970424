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
from urllib.parse import urlparse

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger

from safr_lightning.errors import ConfigError, instantiate_checked
from safr_lightning.results import RESULTS_FILE, read_record
from safr_lightning.rundir import check_writable

log = logging.getLogger(__name__)

LOG_FILE = "train.log"  # Hydra's job log in the run dir (conf/train.yaml: task_name=train)


def has_wandb_credentials() -> bool:
    """An API key in the environment, or a ``~/.netrc`` entry for the configured W&B host.

    The host is ``WANDB_BASE_URL``'s (a self-hosted server), else ``api.wandb.ai``.
    """
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or "api.wandb.ai"
    try:
        auth = netrc.netrc(os.environ.get("NETRC")).authenticators(host)
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


def _wandb_home_dirs() -> list[tuple[str, Path]]:
    """Where W&B writes besides the run dir: (variable, place), as W&B itself resolves them."""
    import platformdirs  # a dependency of wandb

    return [
        ("WANDB_CACHE_DIR", Path(os.environ.get("WANDB_CACHE_DIR") or platformdirs.user_cache_dir("wandb"))),
        ("WANDB_DATA_DIR", Path(os.environ.get("WANDB_DATA_DIR") or platformdirs.user_data_dir("wandb"))),
    ]


def check_wandb_places(cfg: Any, run_dir: Path) -> None:
    """Before any work: every place W&B will write must be writable (one line, exit 2, otherwise).

    An empty ``WANDB_MODE`` (``WANDB_MODE= python ...``) is read as unset, with a warning: W&B
    itself would stop with a traceback on it. W&B only reads its config dir (``WANDB_CONFIG_DIR``),
    so that one is not checked.
    """
    if os.environ.get("WANDB_MODE") == "":
        log.warning("WANDB_MODE is set but empty: treated as unset")
        del os.environ["WANDB_MODE"]
    if cfg.name != "wandb" or wandb_mode(cfg.mode) == "disabled":
        return
    check_writable(Path(os.environ.get("WANDB_DIR") or run_dir), "the W&B run (WANDB_DIR)")
    for env, place in _wandb_home_dirs():
        try:
            check_writable(place, f"W&B's files ({env})")
        except ConfigError as exc:
            raise ConfigError(f"{exc}; set {env} to a writable directory, or use logger=csv") from None


def build_loggers(
    cfg: Any,
    run_dir: Path,
    run_name: str,
    config: dict[str, Any],
    tags: list[str],
    group: str | None = None,
    summary_max: tuple[str, ...] = ("val/acc",),
) -> list[Logger]:
    """Loggers for ``cfg.logger.name``; ``config`` is the resolved run config sent to W&B.

    W&B: ``group`` (``logger.group`` wins) and ``job_type=train``; per-epoch metrics are plotted
    against ``epoch``, and the summary of each of ``summary_max`` is its best (max) value, the one the
    checkpoint that was tested had, not the last epoch's.
    """
    # save_dir: the run dir, unless the entry says otherwise.
    extra = [instantiate_checked(e, Logger, "logger.extra", save_dir=str(run_dir)) for e in (cfg.get("extra") or [])]
    name = cfg.name
    if name == "none":
        return extra
    if name == "csv":
        return [CSVLogger(save_dir=str(run_dir), name="", version="csv"), *extra]
    check_wandb_places(cfg, run_dir)
    mode = wandb_mode(cfg.mode)
    if mode == "offline" and not cfg.mode:
        log.info("W&B: no credentials found, logging offline to %s/wandb", run_dir)
    logger = WandbLogger(
        project=cfg.project,
        entity=cfg.entity,
        group=cfg.group or group,
        job_type="train",
        name=run_name,
        tags=sorted(set(tags) | set(cfg.tags)),
        save_dir=str(run_dir),
        mode=mode,
        log_model=cfg.log_model,
        config=config,
    )
    define_metrics(logger.experiment, summary_max)
    return [logger, *extra]


def wandb_identity(loggers: list[Logger]) -> dict[str, Any] | None:
    """``{"project", "group", "id", "name"}`` of the run's W&B run, for results.json; None without one."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            run = logger.experiment
            if getattr(run, "id", None) is None:
                return None
            return {"project": run.project, "group": run.group or None, "id": run.id, "name": run.name}
    return None


def log_evaluation(run_dir: Path, trained: dict[str, Any], evaluation: dict[str, Any], output: Path) -> Path | None:
    """Log an evaluation as a W&B run (``job_type=evaluate``) in the training run's project and group.

    ``trained``: the training run's ``results.json`` ``wandb`` block. The run gets the evaluation's
    per-k curve as a table, its scalar metrics in the summary and the evaluation file itself.
    Returns the W&B run's directory; a W&B failure is a warning, never the evaluation's loss.
    """
    import wandb

    from safr_lightning.analysis.srs import curve_rows, flat_metrics

    block = "test" if "test" in evaluation else "val"
    try:
        run = wandb.init(
            project=trained.get("project") or "safr", group=trained.get("group"), job_type="evaluate",
            name=f"{trained.get('name') or run_dir.name}-{output.stem}", dir=str(run_dir), mode=wandb_mode(None),
            config={"evaluation": output.name, "trained_run": trained.get("id"), "split": evaluation.get("split")},
            reinit="finish_previous",
        )  # fmt: skip
        columns, rows = curve_rows(evaluation[block])
        run.log({f"{block}/srs_curve": wandb.Table(columns=columns, data=rows)})
        for key, value in flat_metrics(evaluation[block], block).items():
            run.summary[key] = value
        run.summary["status"] = "ok"
        run.save(str(output), base_path=str(output.parent), policy="now")
        directory = Path(run.dir).parent
        run.finish()
    except Exception as exc:
        log.warning("W&B could not log the evaluation (%s); %s is complete", exc, output)
        return None
    return directory


def define_metrics(run: Any, summary_max: tuple[str, ...]) -> None:
    """An ``epoch`` axis for everything logged per epoch, and best-value summaries."""
    if not hasattr(run, "define_metric"):  # a disabled run
        return
    run.define_metric("epoch")
    per_epoch = ["val/*", "perf/*", "train/acc"]  # W&B takes globs only as a suffix
    per_epoch += [f"train/{term}_epoch" for term in ("loss", "loss_ce", "loss_imp", "loss_inter", "loss_info")]
    for pattern in per_epoch:
        run.define_metric(pattern, step_metric="epoch")
    for key in summary_max:
        run.define_metric(key, step_metric="epoch", summary="max")


def finish_wandb(run_dir: Path | None = None) -> None:
    """End the W&B run of this job with the run's outcome, and say how to upload it.

    ``results.json`` and ``train.log`` are saved to the W&B run; its summary gets ``status`` (and
    ``reason`` when the run did not finish), and its exit code is 0 only for ``status: ok``
    (1 for a failure, 130/143 for Ctrl-C/SIGTERM), so W&B shows a failed or stopped run as such.
    """
    try:
        import wandb
    except ImportError:  # pragma: no cover - wandb is a dependency
        return
    run = wandb.run
    if run is None:
        return
    offline = bool(getattr(run.settings, "_offline", False)) or run.settings.mode == "offline"
    try:
        exit_code = _record_outcome(run, run_dir) if run_dir is not None else 0
        wandb.finish(exit_code=exit_code)
    except Exception as exc:  # the run's own files are written already: W&B's failure is only W&B's
        log.warning("W&B could not finish its run (%s); results.json and the checkpoints are complete", exc)
        return
    if offline and run_dir is not None:
        log.info("W&B offline run saved; upload it with: wandb sync %s", run_dir / "wandb" / "offline-run-*")


def _record_outcome(run: Any, run_dir: Path) -> int:
    """Put the run's status (and reason) into the W&B summary, save its files; the exit code to report."""
    record = read_record(run_dir)
    status = (record.status if record else None) or "unknown"
    reason = (record.reason if record else None) or "the run ended without writing results.json"
    run.summary["status"] = status
    if status != "ok":
        run.summary["reason"] = reason
    for name in (RESULTS_FILE, LOG_FILE):
        if (run_dir / name).is_file():
            run.save(str(run_dir / name), base_path=str(run_dir), policy="now")
    if status == "ok":
        return 0
    if status == "interrupted":
        return 143 if "SIGTERM" in reason else 130
    return 1
