"""One training run, from a composed config to ``results.json``: data → module → trainer → files.

Kept apart from the Hydra entry point (``train.py``) so that tests and notebooks can call
:func:`run_training` with any ``DictConfig``.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from safr_lightning.callbacks import SRSCallback, ThroughputMonitor
from safr_lightning.config import validate
from safr_lightning.data.datamodule import SAFRDataModule
from safr_lightning.errors import ConfigError
from safr_lightning.evaluation.srs import SRSSettings
from safr_lightning.loggers import build_loggers
from safr_lightning.module import SAFRModule
from safr_lightning.results import run_identity, write_results

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
TRAINER_KEYS = (
    "accelerator", "devices", "strategy", "precision", "max_epochs", "min_epochs", "max_steps",
    "limit_train_batches", "limit_val_batches", "limit_test_batches", "fast_dev_run",
    "log_every_n_steps", "gradient_clip_val", "num_sanity_val_steps", "enable_progress_bar", "deterministic",
)  # fmt: skip


def quiet_known_warnings() -> None:
    """Silence warnings that are expected by design here, so the real ones stand out."""
    # Batches are built in-process by one vectorized gather; worker processes would only add IPC.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*is smaller than the logging interval.*")
    warnings.filterwarnings("ignore", ".*`isinstance.*LeafSpec.*`.*")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)


def build_datamodule(cfg: DictConfig, tokenizer: Any = None) -> SAFRDataModule:
    return SAFRDataModule(cfg.dataset, cfg.data, seed=int(cfg.seed), tokenizer=tokenizer)


def build_module(cfg: DictConfig, tokenizer_json: str) -> SAFRModule:
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    return SAFRModule(
        tokenizer_json=tokenizer_json,
        num_classes=int(cfg.dataset.num_classes),
        model=container["model"],
        vmask=container["vmask"],
        lambdas=container["lambda"],
        loss=container["loss"],
        optim=container["optim"],
        max_len=int(cfg.dataset.max_len),
        seed=int(cfg.seed),
        nan_check_every=int(cfg.trainer.nan_check_every),
        run_config=container,
    )


def run_name(cfg: DictConfig) -> str:
    lam = cfg["lambda"]
    return f"{cfg.dataset.name}-{cfg.model.name}-imp{lam.imp:g}-inter{lam.inter:g}-s{cfg.seed}"


def run_tags(cfg: DictConfig) -> list[str]:
    lam = cfg["lambda"]
    return [cfg.dataset.name, cfg.model.name, f"imp={lam.imp:g}", f"inter={lam.inter:g}", f"seed={cfg.seed}"]


def build_callbacks(
    cfg: DictConfig, run_dir: Path
) -> tuple[list[Callback], ModelCheckpoint, ThroughputMonitor]:
    cb = cfg.callbacks
    checkpoint = ModelCheckpoint(
        dirpath=str(run_dir / CHECKPOINT_DIR),
        filename="best",
        monitor=cb.checkpoint.monitor,
        mode=cb.checkpoint.mode,
        save_top_k=1,
        save_last=cb.checkpoint.save_last,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    throughput = ThroughputMonitor()
    callbacks: list[Callback] = [checkpoint, throughput]
    if cb.early_stopping.enabled:
        es = cb.early_stopping
        callbacks.append(
            EarlyStopping(monitor=es.monitor, mode=es.mode, patience=es.patience, min_delta=es.min_delta)
        )
    if cfg.srs.enabled:
        settings = SRSSettings.from_config(cfg.srs)
        callbacks.append(SRSCallback(settings, cfg.srs.val_samples, cfg.srs.val_every_n_epochs))
    return callbacks, checkpoint, throughput


def build_trainer(cfg: DictConfig, callbacks: list[Callback], loggers: list[Any], run_dir: Path) -> L.Trainer:
    kwargs = {key: cfg.trainer[key] for key in TRAINER_KEYS}
    kwargs = {k: (OmegaConf.to_container(v) if OmegaConf.is_config(v) else v) for k, v in kwargs.items()}
    return L.Trainer(
        **kwargs,
        callbacks=callbacks,
        logger=loggers if loggers else False,
        default_root_dir=str(run_dir),
        enable_model_summary=False,
    )


def resolve_resume(ckpt_path: str | None, run_dir: Path) -> str | None:
    """``ckpt_path``: null, ``last`` (this run dir's), a run directory, or a checkpoint file."""
    if not ckpt_path:
        return None
    candidate = run_dir / CHECKPOINT_DIR / "last.ckpt" if ckpt_path == "last" else Path(ckpt_path)
    if candidate.is_dir():
        candidate = candidate / CHECKPOINT_DIR / "last.ckpt"
    if not candidate.is_file():
        raise ConfigError(f"invalid config: ckpt_path={ckpt_path!r}; no checkpoint at {candidate}")
    return str(candidate)


def run_training(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train to early stopping, test the best checkpoint, write and return ``results.json``'s content."""
    validate(cfg)
    quiet_known_warnings()
    resume = resolve_resume(cfg.ckpt_path, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)

    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    assert datamodule.tokenizer is not None
    module = build_module(cfg, datamodule.tokenizer.to_str())

    callbacks, checkpoint, throughput = build_callbacks(cfg, run_dir)
    loggers = build_loggers(
        cfg.logger,
        run_dir,
        run_name(cfg),
        OmegaConf.to_container(cfg, resolve=True),
        run_tags(cfg),  # type: ignore[arg-type]
    )
    trainer = build_trainer(cfg, callbacks, loggers, run_dir)

    results: dict[str, Any] = {**run_identity(cfg), "status": "running", "run_dir": str(run_dir)}
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
    fit_s = time.perf_counter() - start

    best_path = checkpoint.best_model_path or None
    val_acc = checkpoint.best_model_score if best_path else trainer.callback_metrics.get("val/acc")
    results["val"] = {"acc": float(val_acc) if val_acc is not None else None}
    results["epochs"] = int(trainer.current_epoch)
    results["global_step"] = int(trainer.global_step)

    timing: dict[str, Any] = {"fit_s": fit_s, **throughput.summary()}
    if cfg.run_test:
        start = time.perf_counter()
        tested = trainer.test(module, datamodule=datamodule, ckpt_path=best_path, verbose=False)
        timing["test_s"] = time.perf_counter() - start
        metrics = tested[0] if tested else {}
        results["test"] = {k.removeprefix("test/"): float(v) for k, v in metrics.items()}
        srs = next((c for c in callbacks if isinstance(c, SRSCallback)), None)
        if srs is not None and srs.test_result is not None:
            results["test"] = srs.merge_test_results(results["test"])
            timing["srs_eval_s"] = srs.test_seconds
    results["timing"] = timing
    results["checkpoint"] = os.path.relpath(best_path, run_dir) if best_path else None
    results["status"] = "ok"
    write_results(run_dir, results)
    log.info(
        "val/acc %.4f  test/acc %s  (%s)", results["val"]["acc"] or float("nan"),
        f"{results['test']['acc']:.4f}" if "test" in results else "-", run_dir,
    )  # fmt: skip
    return results
