"""One training run, from a composed config to ``results.json``: data → module → trainer → files.

Kept apart from the Hydra entry point (``train.py``) so that tests and notebooks can call
:func:`run_training` with any ``DictConfig``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import inspect
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from safr_lightning.analysis.srs import SRSSettings
from safr_lightning.callbacks import AllocationFigures, EpochLog, SRSCallback, ThroughputMonitor
from safr_lightning.checkpoint_io import AtomicCheckpointIO
from safr_lightning.checkpoints import CHECKPOINT_DIR, LAST, load_checkpoint_file
from safr_lightning.cli import (
    note_signal,
    quiet_known_warnings,
    raise_received_signal,
    received_signal,
    signal_cause,
)
from safr_lightning.config import validate
from safr_lightning.data.datamodule import SAFRDataModule
from safr_lightning.data.sources import data_fingerprint
from safr_lightning.data.tokenizer import tokenizer_from_json
from safr_lightning.errors import (
    ConfigError,
    RunDirTaken,
    RunInterrupted,
    SAFRError,
    Terminated,
    first_line,
    instantiate_checked,
)
from safr_lightning.fidelity import fidelity_label
from safr_lightning.files import write_text_atomic
from safr_lightning.loggers import build_loggers, check_wandb_places, wandb_identity
from safr_lightning.memory import keep_freed_memory
from safr_lightning.module import SAFRModule
from safr_lightning.precision import choose_precision
from safr_lightning.results import machine_info, run_identity, write_results
from safr_lightning.resume import check_same_config, finished_results, resolve_resume
from safr_lightning.rundir import (
    SAVED_CONFIG,
    check_run_dir,
    claim_run_dir,
    config_difference,
    fingerprint,
    hold_run_dir,
    is_first_process,
)
from safr_lightning.runlog import open_run_logs

log = logging.getLogger(__name__)

TRAINER_KEYS = (
    "accelerator", "devices", "strategy", "precision", "max_epochs", "min_epochs", "max_steps",
    "limit_train_batches", "limit_val_batches", "limit_test_batches", "fast_dev_run",
    "log_every_n_steps", "gradient_clip_val", "num_sanity_val_steps", "enable_progress_bar", "deterministic",
)  # fmt: skip


def build_datamodule(cfg: DictConfig, tokenizer: Any = None) -> SAFRDataModule:
    pad_to = int(cfg.dataset.max_len) if cfg.fidelity.fixed_padding else None
    return SAFRDataModule(
        cfg.dataset, cfg.data, seed=int(cfg.seed), tokenizer=tokenizer, pad_to=pad_to, data_dir=cfg.paths.data_dir
    )


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
        fidelity=container["fidelity"],
    )


def run_name(cfg: DictConfig) -> str:
    lam = cfg["lambda"]
    mode = "" if cfg.fidelity.name == "exact" else f"-{cfg.fidelity.name}"
    return f"{cfg.dataset.name}{mode}-{cfg.model.name}-imp{lam.imp:g}-inter{lam.inter:g}-s{cfg.seed}"


def run_tags(cfg: DictConfig) -> list[str]:
    lam = cfg["lambda"]
    tags = [
        cfg.dataset.name, cfg.model.name, f"imp={lam.imp:g}", f"inter={lam.inter:g}", f"seed={cfg.seed}",
        f"fidelity={fidelity_label(cfg)}",
    ]  # fmt: skip
    tags += [str(t) for t in cfg.get("tags") or []]
    search = _hydra_choice("hparams_search")
    if search:  # a λ-search trial: its number is the job's (and the Optuna trial's)
        from hydra.core.hydra_config import HydraConfig

        tags += [f"search={search}", f"trial={OmegaConf.select(HydraConfig.get(), 'job.num', default='-')}"]
    debug = _hydra_choice("debug")
    if debug:  # a smoke run must never be read as a result
        tags += ["debug", f"debug={debug}"]
    return tags


def _hydra_choice(group: str) -> str | None:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    choice = HydraConfig.get().runtime.choices.get(group)
    return None if choice in (None, "null") else str(choice)


def sweep_group(cfg: DictConfig) -> str | None:
    """The W&B group of a multirun job: one per sweep *launch* (``paper-2025-06-01-12-00-00-123456``).

    The sweep's folder name carries its launch time, so two launches of ``+sweep=paper`` never share
    a group. None for a single run.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    sweep_dir = Path(HydraConfig.get().sweep.dir)
    launch = "-".join([sweep_dir.parent.name, sweep_dir.name.split("-p")[0]])
    return f"{cfg.sweep_name}-{launch}"


def build_callbacks(cfg: DictConfig, run_dir: Path) -> tuple[list[Callback], ModelCheckpoint, ThroughputMonitor]:
    cb = cfg.callbacks
    checkpoint = ModelCheckpoint(
        dirpath=str(run_dir / CHECKPOINT_DIR),
        filename="best",
        monitor=cb.checkpoint.monitor,
        mode=cb.checkpoint.mode,
        save_top_k=1,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    throughput = ThroughputMonitor()
    callbacks: list[Callback] = [checkpoint, throughput, EpochLog(throughput)]  # EpochLog reads throughput's epoch
    if cb.figures.enabled:
        fig = cb.figures
        callbacks.append(
            AllocationFigures(
                run_dir,
                n_texts=fig.n_texts,
                layer=fig.layer,
                top_pairs=fig.top_pairs,
                group_stats=fig.group_stats,
                max_texts=fig.max_texts,
                formats=list(fig.formats),
                seed=int(cfg.seed),
            )
        )
    if cb.checkpoint.save_last:
        # Every epoch's state, for resuming. Not `save_last=True` above: since Lightning 2.5 that
        # writes last.ckpt only when the monitored metric improves (a copy of best.ckpt).
        callbacks.append(
            ModelCheckpoint(
                dirpath=str(run_dir / CHECKPOINT_DIR),
                filename=LAST.removesuffix(".ckpt"),
                monitor=None,
                save_top_k=1,
                auto_insert_metric_name=False,
                enable_version_counter=False,
            )
        )
    if cb.early_stopping.enabled:
        es = cb.early_stopping
        callbacks.append(EarlyStopping(monitor=es.monitor, mode=es.mode, patience=es.patience, min_delta=es.min_delta))
    for entry in cfg.callbacks.extra:  # e.g. {_target_: lightning.pytorch.callbacks.LearningRateMonitor}
        callbacks.append(instantiate_checked(entry, Callback, "callbacks.extra"))
    if cfg.srs.enabled:
        settings = SRSSettings.from_config(cfg.srs)
        val_settings = dataclasses.replace(
            settings, ks=tuple(float(k) for k in cfg.srs.val_ks), random_draws=int(cfg.srs.val_random_draws)
        )
        callbacks.append(SRSCallback(settings, cfg.srs.val_samples, cfg.srs.val_every_n_epochs, val_settings))
    return callbacks, checkpoint, throughput


# Trainer keywords this module sets itself: trainer.extra may not.
MANAGED_TRAINER_KEYS = frozenset({*TRAINER_KEYS, "callbacks", "logger", "default_root_dir", "enable_model_summary"})


def trainer_extra(cfg: DictConfig) -> dict[str, Any]:
    """``trainer.extra``, checked against ``lightning.Trainer``'s keywords (one line on a bad key)."""
    extra = OmegaConf.to_container(cfg.trainer.extra, resolve=True) if cfg.trainer.extra else {}
    assert isinstance(extra, dict)
    accepted = set(inspect.signature(L.Trainer.__init__).parameters) - {"self"}
    for key in extra:
        if key in MANAGED_TRAINER_KEYS:
            raise ConfigError(f"invalid config: trainer.extra.{key}; set trainer.{key} (or let the project set it)")
        if key not in accepted:
            close = difflib.get_close_matches(key, sorted(accepted), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(f"invalid config: trainer.extra.{key} is not a lightning.Trainer keyword{hint}")
    return extra


def trainer_kwargs(cfg: DictConfig) -> dict[str, Any]:
    """The ``lightning.Trainer`` keywords the config sets (``trainer.*`` and ``trainer.extra``);
    ``precision=auto`` resolved (:mod:`safr_lightning.precision`)."""
    kwargs = {key: cfg.trainer[key] for key in TRAINER_KEYS}
    kwargs = {k: (OmegaConf.to_container(v) if OmegaConf.is_config(v) else v) for k, v in kwargs.items()}
    kwargs["precision"] = choose_precision(str(kwargs["precision"]), str(kwargs["accelerator"]))["used"]
    kwargs.update(trainer_extra(cfg))
    return kwargs


def build_trainer(cfg: DictConfig, callbacks: list[Callback], loggers: list[Any], run_dir: Path) -> L.Trainer:
    kwargs = trainer_kwargs(cfg)
    plugins = list(kwargs.pop("plugins", None) or [])
    xla = str(kwargs.get("accelerator")) == "tpu" or "xla" in str(kwargs.get("strategy"))  # XLA's own CheckpointIO
    if not xla and not any(isinstance(p, CheckpointIO) for p in plugins):  # checkpoints whole or not at all
        plugins.append(AtomicCheckpointIO())
    with lightning_refusals(cfg):
        return L.Trainer(
            **kwargs,
            plugins=plugins,
            callbacks=callbacks,
            logger=loggers if loggers else False,
            default_root_dir=str(run_dir),
            enable_model_summary=False,
        )


@contextlib.contextmanager
def lightning_refusals(cfg: DictConfig) -> Iterator[None]:
    """Lightning refusing (or failing on) a value we passed it becomes one line naming our key.

    ``MisconfigurationException`` is Lightning's word for a refusal. A ``ValueError``, ``TypeError``
    or ``ArithmeticError`` raised inside Lightning counts too when its message names a Trainer keyword
    the config set (the first one named is the culprit; the others are advice), or when the config
    passes keywords of its own through ``trainer.extra`` (which the project cannot check: e.g.
    ``check_val_every_n_epoch=0`` divides by zero in Lightning's loop). Anything else is a bug and
    keeps its traceback. They come when the Trainer is built (``trainer=gpu`` without a GPU) or only
    once it sees the data (``trainer.limit_train_batches=0.0001``: under one batch).
    """
    try:
        yield
    except (MisconfigurationException, ValueError, TypeError, ArithmeticError) as exc:
        if _through_our_code(exc):  # raised by our module or a callback inside Lightning's loop: a bug
            raise
        kwargs = trainer_kwargs(cfg)
        extra = list(cfg.trainer.extra or {})
        named = _keys_named(str(exc), kwargs)
        refusal = isinstance(exc, MisconfigurationException)
        if not refusal and not (_raised_by_lightning(exc) and (named or extra)):
            raise
        keys = named[:1] or (extra if not refusal or not named else [])
        keys = keys or [k for k in ("accelerator", "devices", "strategy", "precision") if k in kwargs]
        shown = ", ".join(f"trainer.{'extra.' if k in extra else ''}{k}={kwargs[k]!r}" for k in keys)
        what = first_line(exc, 400) if refusal or named else f"{type(exc).__name__}: {first_line(exc, 400)}"
        verb = "refused it" if refusal or named else "failed with it"
        raise ConfigError(f"invalid config: {shown}: Lightning {verb}: {what}") from exc


_PACKAGE_DIR = str(Path(__file__).resolve().parent)


def _through_our_code(exc: BaseException) -> bool:
    """Did ``exc`` pass through this package's code after entering Lightning's (our callbacks, module)?"""
    tb = exc.__traceback__
    inside_lightning = False
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if f"{os.sep}lightning{os.sep}" in filename:
            inside_lightning = True
        elif inside_lightning and filename.startswith(_PACKAGE_DIR):
            return True
        tb = tb.tb_next
    return False


def _keys_named(message: str, kwargs: dict[str, Any]) -> list[str]:
    """The Trainer keywords in ``kwargs`` that ``message`` names (as words), first-named first."""
    found = {}
    for key in kwargs:
        match = re.search(rf"(?<![\w.]){re.escape(key)}(?!\w)", message)
        if match:
            found[key] = match.start()
    return sorted(found, key=found.__getitem__)


def _raised_by_lightning(exc: BaseException) -> bool:
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last, tb = tb, tb.tb_next
    return last is not None and f"{os.sep}lightning{os.sep}" in last.tb_frame.f_code.co_filename


def _check_resume(cfg: DictConfig, resume: Path, run_dir: Path) -> tuple[dict[str, Any], str]:
    """Check that ``resume`` continues this config's run.

    Returns where it stood (for results.json) and its tokenizer JSON: the checkpoint's vocabulary,
    not one rebuilt from the data. ``dataset.local_dir`` may point elsewhere on resume, and a copy
    that differs by one line would change the embedding's shape.
    """
    checkpoint = load_checkpoint_file(resume, "ckpt_path")
    trained = checkpoint["hyper_parameters"].get("run_config")
    if trained is not None:
        now = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(now, dict)
        check_same_config(trained, now, str(cfg.ckpt_path))
    # ModelCheckpoint restores its best score only into the dir it was saved for (a string match).
    saved_for = {
        state.get("dirpath")
        for key, state in checkpoint.get("callbacks", {}).items()
        if str(key).startswith("ModelCheckpoint") and isinstance(state, dict)
    }
    if saved_for and str(run_dir / CHECKPOINT_DIR) not in saved_for:
        log.warning(
            "resuming %s (written for %s) in %s: the best checkpoint is tracked afresh here, the best "
            "before the resume is not compared; ckpt_path=<the run's dir> continues a run in its own dir",
            resume, ", ".join(map(str, saved_for)), run_dir,
        )  # fmt: skip
    inside = resume.resolve().is_relative_to(run_dir.resolve())
    where = {
        "checkpoint": os.path.relpath(resume, run_dir) if inside else str(resume),
        "epoch": int(checkpoint["epoch"]),
        "global_step": int(checkpoint["global_step"]),
    }
    return where, str(checkpoint["hyper_parameters"]["tokenizer_json"])


@contextlib.contextmanager
def _interruptible(trainer: L.Trainer, run_dir: Path, stage: str) -> Iterator[None]:
    """Turn Lightning's ways of stopping into :class:`RunInterrupted`.

    After Ctrl-C Lightning 2.6 tears down and calls ``sys.exit(1)`` (a release that instead returns
    from ``fit`` leaves the trainer marked interrupted: checked too); after SIGTERM it raises
    ``SIGTERMException``, a ``SystemExit`` of code 0. Either way the run would end without
    results.json or a word, or go on to test a half-trained model.
    """
    try:
        yield
    except (SIGTERMException, Terminated, KeyboardInterrupt) as exc:
        raise _interruption(trainer, run_dir, stage, *signal_cause(exc)) from exc
    except SystemExit as exc:
        if not trainer.interrupted and received_signal() is None:
            raise
        raise _interruption(trainer, run_dir, stage, *signal_cause(KeyboardInterrupt())) from exc
    if trainer.interrupted:
        raise _interruption(trainer, run_dir, stage, *signal_cause(KeyboardInterrupt()))


def _interruption(trainer: L.Trainer, run_dir: Path, stage: str, cause: str, code: int) -> RunInterrupted:
    if (run_dir / CHECKPOINT_DIR / LAST).is_file():
        then = f"continue with ckpt_path={run_dir}"
    else:
        then = "no checkpoint yet: run it again"
    return RunInterrupted(
        f"interrupted by {cause} during {stage} (epoch {trainer.current_epoch}, global step "
        f"{trainer.global_step}); {then}",
        code,
    )


def _last_checkpoint(run_dir: Path) -> str | None:
    """``checkpoints/last.ckpt`` (the weights after the last epoch); None, the in-memory weights, without it."""
    path = run_dir / CHECKPOINT_DIR / LAST
    return str(path) if path.is_file() else None


def _check_finished(
    finished: dict[str, Any], config: dict[str, Any], run_dir: Path, data: dict[str, str] | None
) -> None:
    """A finished run in ``run_dir`` is reused (or retrained) only by the config and data that made it."""
    trained_on = finished.get("data")
    if isinstance(trained_on, dict) and data is not None:
        changed = sorted(split for split in set(trained_on) | set(data) if trained_on.get(split) != data.get(split))
        if changed:
            raise RunDirTaken(
                f"{run_dir} holds a finished run trained on other data files ({', '.join(changed)} differ: "
                "another dataset.local_dir's content); nothing was changed there: give this run its own dir"
            )
    saved = run_dir / SAVED_CONFIG
    old: dict[str, Any] | None = None
    if saved.is_file():
        try:
            loaded = OmegaConf.to_container(OmegaConf.load(saved), resolve=False)
            old = loaded if isinstance(loaded, dict) else None
        except Exception:  # an unreadable config.yaml: the fingerprint below decides
            old = None
    if old is not None:
        diff = config_difference(old, config)
    elif finished.get("fingerprint") == fingerprint(config):
        diff = None
    else:
        diff = ("the config", "unknown (no config.yaml, no matching fingerprint)", "this one")
    if diff is not None:
        key, was, now = diff
        raise RunDirTaken(
            f"{run_dir} holds a finished run trained with {key}={was!r}, and this run has {key}={now!r}; "
            "nothing was changed there: give this config its own dir (a new hydra.run.dir, or a sweep "
            "without hydra.sweep.dir)"
        )


def _task_overrides() -> list[str] | None:
    """The command-line overrides of this Hydra job (None outside Hydra, e.g. from a notebook)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    return [str(o) for o in HydraConfig.get().overrides.task]


def run_training(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train to early stopping, test the best checkpoint, write and return ``results.json``'s content.

    The run holds ``run_dir`` (:func:`~safr_lightning.rundir.hold_run_dir`) from start to end.
    """
    validate(cfg)
    quiet_known_warnings()
    keep_freed_memory()
    check_run_dir(run_dir)
    check_wandb_places(cfg.logger, run_dir)  # before minutes of training, not at its end
    trainer_extra(cfg)
    stage = _Stage(run_dir)
    with hold_run_dir(run_dir), _sigterm_outside_fit(stage):
        try:
            return _run_training(cfg, run_dir, stage)
        except RunInterrupted:
            raise
        except (KeyboardInterrupt, Terminated, SIGTERMException) as exc:  # outside a stage that converts it
            raise stage.interrupted(*signal_cause(exc)) from None
        except BaseException as exc:
            if received_signal() is not None:  # the signal surfaced as another error on its way up
                raise stage.interrupted(*signal_cause(exc)) from exc
            raise


@dataclasses.dataclass
class _Stage:
    """Where a run is, so that a signal at any moment ends it with one line naming the stage."""

    run_dir: Path
    name: str = "setup"
    trainer: L.Trainer | None = None

    def enter(self, name: str) -> None:
        raise_received_signal()  # a signal some library swallowed: do not start the next stage
        self.name = name

    def interrupted(self, cause: str, code: int) -> RunInterrupted:
        if self.trainer is not None:
            return _interruption(self.trainer, self.run_dir, self.name, cause, code)
        return RunInterrupted(f"interrupted by {cause} during {self.name}; run it again", code)


@contextlib.contextmanager
def _sigterm_outside_fit(stage: _Stage) -> Iterator[None]:
    """SIGTERM ends the run in every stage, not only in ``fit``.

    Lightning turns SIGTERM into ``SIGTERMException`` only at a training batch's end (it composes
    this handler with its own); in test, SRS, figures or writing it would only set a flag, and the
    run would go on to end ``ok`` with exit 0.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        # In fit, Lightning's handler calls this one after its own and stops at a batch's end; until
        # it is installed (DDP launch, setup, restoring, wandb.init) and after its teardown, this
        # handler is the only one, and raises. Recorded first: whatever the exception turns into on
        # its way up, run_training reports the signal. A BaseException, so that no library's (or data
        # loader's) ``except Exception`` can take it for an error of its own.
        note_signal(signum)
        if stage.name != "training" or signal.getsignal(signal.SIGTERM) is handler:
            raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        if previous is not None:  # None: a handler installed from C, which Python cannot restore
            signal.signal(signal.SIGTERM, previous)


def _run_training(cfg: DictConfig, run_dir: Path, stage: _Stage) -> dict[str, Any]:
    stage.enter("setup")
    resume = resolve_resume(cfg.ckpt_path, run_dir)
    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    data = data_fingerprint(cfg.dataset, cfg.paths.data_dir)
    finished = finished_results(run_dir)
    if finished is not None:
        _check_finished(finished, config, run_dir, data)
        if resume is not None:
            # A sweep re-launched with ckpt_path=last must not retrain (or overwrite) finished jobs.
            log.warning("%s already finished with this config (results.json status ok); nothing to resume", run_dir)
            return finished
    resumed, tokenizer_json = _check_resume(cfg, resume, run_dir) if resume is not None else (None, None)
    # Under DDP every process runs this function; only the first one writes the run dir's files.
    writer = is_first_process()
    run_dir.mkdir(parents=True, exist_ok=True)
    if writer:  # the dir is this run's now (not another config's finished run): .hydra/, train.log
        claim_run_dir(run_dir, cfg)
        write_text_atomic(run_dir / SAVED_CONFIG, OmegaConf.to_yaml(cfg, resolve=True))
    else:  # another DDP process: rank 0 claimed the dir; this process's own log file may open
        open_run_logs()
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    # From the first moment the dir says what it holds: a run killed at any point never leaves a
    # previous run's "ok" beside its own checkpoints.
    results: dict[str, Any] = {
        **run_identity(cfg), "status": "running", "fingerprint": fingerprint(config),
        "overrides": _task_overrides(), "data": data, "run_dir": str(run_dir),
    }  # fmt: skip
    if writer:
        write_results(run_dir, results)

    datamodule = build_datamodule(cfg, tokenizer_from_json(tokenizer_json) if tokenizer_json else None)
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
        group=sweep_group(cfg),
        summary_max=("val/acc", *(f"val/srs@{float(k):g}" for k in cfg.srs.val_ks)),
    )
    trainer = build_trainer(cfg, callbacks, loggers, run_dir)
    wandb_run = wandb_identity(loggers)
    if wandb_run is not None:  # evaluate logs into the same project and group
        results["wandb"] = wandb_run

    stage.trainer = trainer
    start = time.perf_counter()
    stage.enter("training")
    with _interruptible(trainer, run_dir, "training"), lightning_refusals(cfg):
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume) if resume else None)
    fit_s = time.perf_counter() - start
    if trainer.received_sigterm:  # noticed by Lightning after its last batch: still a stop
        raise _interruption(trainer, run_dir, "training", "SIGTERM", 143)
    stage.enter("test")
    if trainer.global_step == 0:
        raise SAFRError(
            "trained 0 optimizer steps (trainer.limit_train_batches, max_steps or an empty train split?); "
            "an untrained model is not tested"
        )

    best_path = checkpoint.best_model_path or None
    # fidelity.test_on=last: the official code tests the live (last epoch's) weights.
    tested_path = _last_checkpoint(run_dir) if cfg.fidelity.test_on == "last" else best_path
    val_acc = checkpoint.best_model_score if best_path else trainer.callback_metrics.get("val/acc")
    results["val"] = {"acc": float(val_acc) if val_acc is not None else None}
    results["epochs"] = int(trainer.current_epoch)
    results["global_step"] = int(trainer.global_step)

    # With `resumed_from` in results.json, timing covers only what this process trained (after the resume).
    timing: dict[str, Any] = {"fit_s": fit_s, **throughput.summary()}
    srs = next((c for c in callbacks if isinstance(c, SRSCallback)), None)
    if srs is not None and cfg.srs.final_val:
        # The tested checkpoint's full SRS protocol on the validation split: what a search may
        # optimise (hparams_search=pareto) without ever reading a test number.
        start = time.perf_counter()
        with _interruptible(trainer, run_dir, "validation"), lightning_refusals(cfg):
            trainer.validate(module, datamodule=datamodule, ckpt_path=tested_path, verbose=False)
        timing["final_val_s"] = time.perf_counter() - start
        if srs.final_val_result is not None:
            results["val"]["final"] = {**srs.final_val_result, "checkpoint": cfg.fidelity.test_on}
    if cfg.run_test:
        start = time.perf_counter()
        with _interruptible(trainer, run_dir, "test"), lightning_refusals(cfg):
            tested = trainer.test(module, datamodule=datamodule, ckpt_path=tested_path, verbose=False)
        timing["test_s"] = time.perf_counter() - start
        stage.enter("writing results")
        metrics = tested[0] if tested else {}
        results["test"] = {k.removeprefix("test/"): float(v) for k, v in metrics.items()}
        if srs is not None and srs.test_result is not None:
            results["test"] = srs.merge_test_results(results["test"])
            timing["srs_eval_s"] = srs.test_seconds
    results["timing"] = timing
    results["precision"] = choose_precision(str(cfg.trainer.precision), str(cfg.trainer.accelerator))
    results["machine"] = machine_info()
    results["checkpoint"] = os.path.relpath(tested_path, run_dir) if tested_path else None
    if resumed:
        results["resumed_from"] = resumed
    results["status"] = "ok"
    if writer:
        write_results(run_dir, results)
    log.info(summary_line(results, run_dir))
    return results


def summary_line(results: dict[str, Any], run_dir: Path) -> str:
    """The run's last log line: ``val/acc 0.7741  test/acc 0.7655  (<run dir>)``; ``-`` where none."""

    def shown(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"  # 0.0 is an accuracy, not a missing one

    test = results.get("test") or {}
    return f"val/acc {shown(results['val']['acc'])}  test/acc {shown(test.get('acc'))}  ({run_dir})"
