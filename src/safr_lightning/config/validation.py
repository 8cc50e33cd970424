"""Value checks a type cannot express (λ ≥ 0, k in (0, 100), known keys, ...).

:func:`validate` runs on the composed config before anything is built, so a bad value costs one
line (a :class:`~safr_lightning.errors.ConfigError`), not a run.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from omegaconf import DictConfig, OmegaConf

from safr_lightning.config.schema import (
    ACCELERATORS,
    CARVES,
    DATASETS,
    FIGURE_FORMATS,
    INITS,
    LOGGERS,
    MAX_BATCH,
    MAX_SEED,
    MODELS,
    OPTIMIZERS,
    PAD_EMBEDDINGS,
    PRECISIONS,
    REGULARIZERS,
    SCHEDULERS,
    SCORERS,
    SWEEP_NAME,
    TEST_ON,
    TRACE_LAYERS,
    TrainConfig,
)
from safr_lightning.errors import ConfigError
from safr_lightning.fidelity import FIDELITY_PRESETS


def _fail(key: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"invalid config: {key}={value!r}; allowed: {allowed}")


FLOAT32_MAX = 3.4028234663852886e38  # a larger weight becomes inf when it meets a float32 loss


def _check_lambda(key: str, value: float) -> None:
    if value is None or not math.isfinite(value) or not 0 <= value <= FLOAT32_MAX:
        _fail(key, value, "a finite number >= 0 (at most 3.4e38, the float32 range)")


def check_known_keys(cfg: DictConfig, schema: DictConfig | None = None, prefix: str = "") -> None:
    """Every key of ``cfg`` is in the schema: ``+model.foo=1`` bypasses Hydra's struct check."""
    if schema is None:
        schema = OmegaConf.structured(TrainConfig)
    known = list(schema.keys())  # `key in schema` would be False for a MISSING value
    for key in cfg.keys():
        full_key = f"{prefix}{key}"
        if key not in known:
            value = OmegaConf.select(cfg, str(key))
            shown = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
            where = f"in {prefix[:-1]}" if prefix else "at the top level"
            raise ConfigError(
                f"invalid config: unknown key {full_key}={shown!r}; "
                f"allowed keys {where}: {', '.join(str(k) for k in known)}"
            )
        child, reference = cfg._get_node(key), schema._get_node(key)
        # Into typed sections only: a free mapping (trainer.extra) takes any key.
        typed = isinstance(reference, DictConfig) and dataclasses.is_dataclass(reference._metadata.object_type)
        if isinstance(child, DictConfig) and typed and not child._is_none():
            check_known_keys(child, reference, f"{full_key}.")


def validate(cfg: DictConfig) -> None:
    """Check the values a type cannot express; raise :class:`ConfigError` naming key and value."""
    check_known_keys(cfg)
    if not 0 <= cfg.seed <= MAX_SEED:
        _fail("seed", cfg.seed, f"an integer in [0, {MAX_SEED}]")
    if cfg.dataset.name not in DATASETS:
        _fail("dataset.name", cfg.dataset.name, " | ".join(DATASETS))
    if cfg.dataset.name == "local" and not cfg.dataset.local_dir:
        _fail(
            "dataset.local_dir",
            cfg.dataset.local_dir,
            "a directory with {train,validation,test}.parquet/.csv/.jsonl",
        )
    if cfg.dataset.carve not in CARVES:
        _fail("dataset.carve", cfg.dataset.carve, " | ".join(CARVES))
    if cfg.dataset.max_len < 1:
        _fail("dataset.max_len", cfg.dataset.max_len, "an integer >= 1")
    if cfg.dataset.num_classes < 2:
        _fail("dataset.num_classes", cfg.dataset.num_classes, "an integer >= 2")
    if cfg.dataset.min_freq < 1:
        _fail("dataset.min_freq", cfg.dataset.min_freq, "an integer >= 1")
    val_size = cfg.dataset.val_size
    if not (math.isfinite(val_size) and (0 < val_size < 1 or (val_size >= 1 and float(val_size).is_integer()))):
        _fail("dataset.val_size", val_size, "a fraction in (0, 1) or a whole count >= 1")
    for key in ("split_seed", "synthetic.seed"):
        value = OmegaConf.select(cfg.dataset, key)
        if not 0 <= value <= MAX_SEED:
            _fail(f"dataset.{key}", value, f"an integer in [0, {MAX_SEED}]")
    for split in ("train", "val", "test"):
        limit = cfg.dataset[f"limit_{split}"]
        if limit is not None and limit < 1:
            _fail(f"dataset.limit_{split}", limit, "null or an integer >= 1")
    for key in ("batch_size", "eval_batch_size"):
        if not 1 <= cfg.data[key] <= MAX_BATCH:
            _fail(f"data.{key}", cfg.data[key], f"an integer in [1, {MAX_BATCH}]")
    if cfg.data.bucket_batches < 1:
        _fail("data.bucket_batches", cfg.data.bucket_batches, "an integer >= 1")
    if cfg.data.num_workers < 0:
        _fail("data.num_workers", cfg.data.num_workers, "an integer >= 0")
    m = cfg.model
    if m.name not in MODELS:
        _fail("model.name", m.name, " | ".join(MODELS))
    if m.n_layers < 1:
        _fail("model.n_layers", m.n_layers, "an integer >= 1")
    if m.n_heads < 1:
        _fail("model.n_heads", m.n_heads, "an integer >= 1")
    if m.d_model < 1 or m.d_model % m.n_heads:
        _fail("model.d_model", m.d_model, f"a positive multiple of model.n_heads={m.n_heads}")
    if m.d_ff < 1:
        _fail("model.d_ff", m.d_ff, "an integer >= 1")
    if not 0 <= m.dropout < 1:
        _fail("model.dropout", m.dropout, "a number in [0, 1)")
    if cfg.vmask.hidden < 1:
        _fail("vmask.hidden", cfg.vmask.hidden, "an integer >= 1")
    if not (math.isfinite(cfg.vmask.tau) and cfg.vmask.tau > 0):
        _fail("vmask.tau", cfg.vmask.tau, "a finite number > 0")
    validate_fidelity(cfg.fidelity)
    _check_lambda("vmask.beta", cfg.vmask.beta)
    _check_lambda("lambda.imp", cfg["lambda"].imp)
    _check_lambda("lambda.inter", cfg["lambda"].inter)
    if not m.vmask and cfg.vmask.beta > 0:
        _fail("vmask.beta", cfg.vmask.beta, "0 when model.vmask=false (there is no mask to regularize)")
    if not (math.isfinite(cfg.optim.lr) and cfg.optim.lr > 0):
        _fail("optim.lr", cfg.optim.lr, "a finite number > 0")
    _check_lambda("optim.weight_decay", cfg.optim.weight_decay)
    if cfg.optim.name not in OPTIMIZERS:
        _fail("optim.name", cfg.optim.name, " | ".join(OPTIMIZERS))
    if cfg.optim.scheduler not in SCHEDULERS:
        _fail("optim.scheduler", cfg.optim.scheduler, " | ".join(SCHEDULERS))
    if cfg.optim.warmup_steps < 0:
        _fail("optim.warmup_steps", cfg.optim.warmup_steps, "an integer >= 0")
    for i, entry in enumerate(cfg.callbacks.extra):
        if not OmegaConf.is_dict(entry) or not isinstance(entry.get("_target_"), str):
            _fail(f"callbacks.extra[{i}]", entry, "{_target_: a.dotted.CallbackClass, ...its arguments}")
    if cfg.trainer.accelerator not in ACCELERATORS:
        _fail("trainer.accelerator", cfg.trainer.accelerator, " | ".join(ACCELERATORS))
    if str(cfg.trainer.precision) not in PRECISIONS:
        _fail("trainer.precision", cfg.trainer.precision, " | ".join(PRECISIONS))
    validate_loop(cfg)
    if cfg.trainer.jobs_per_gpu < 1:
        _fail("trainer.jobs_per_gpu", cfg.trainer.jobs_per_gpu, "an integer >= 1")
    if cfg.trainer.nan_check_every < 1:
        _fail("trainer.nan_check_every", cfg.trainer.nan_check_every, "an integer >= 1")
    if not SWEEP_NAME.fullmatch(cfg.sweep_name):
        _fail("sweep_name", cfg.sweep_name, "letters, digits, '.', '_' and '-' (it names a folder)")
    if cfg.logger.name not in LOGGERS:
        _fail("logger.name", cfg.logger.name, " | ".join(LOGGERS))
    if cfg.logger.mode not in (None, "online", "offline", "disabled"):
        _fail("logger.mode", cfg.logger.mode, "null | online | offline | disabled")
    for i, entry in enumerate(cfg.logger.get("extra") or []):
        if not OmegaConf.is_dict(entry) or not isinstance(entry.get("_target_"), str):
            _fail(f"logger.extra[{i}]", entry, "{_target_: a.dotted.LoggerClass, ...its arguments}")
    validate_srs(cfg.srs)
    validate_figures("callbacks.figures", cfg.callbacks.figures)
    if cfg.srs.enabled and cfg.srs.scorer == "vmask" and not m.vmask:
        _fail("srs.scorer", cfg.srs.scorer, "capacity | random | attention when model.vmask=false (no VMASK)")
    s = cfg.dataset.synthetic
    if cfg.dataset.name == "synthetic":
        if not 1 <= s.min_words <= s.max_words:
            _fail("dataset.synthetic.min_words", s.min_words, "1 <= min_words <= max_words")
        if not 1 <= s.min_planted <= s.max_planted:
            _fail("dataset.synthetic.min_planted", s.min_planted, "1 <= min_planted <= max_planted")
        for key in ("train_size", "val_size", "test_size", "filler_vocab", "polarity_vocab"):
            if s[key] < 1:
                _fail(f"dataset.synthetic.{key}", s[key], "an integer >= 1")
        for key in ("negation_prob", "distractor_prob"):
            if not 0 <= s[key] <= 1:
                _fail(f"dataset.synthetic.{key}", s[key], "a probability in [0, 1]")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_limit(key: str, value: Any, zero_ok: bool) -> None:
    """Lightning's ``limit_*_batches``: null, a batch count, or a fraction of the batches."""
    low = 0 if zero_ok else 1
    if value is None:
        return
    if _is_int(value) and value >= low:
        return
    if isinstance(value, float) and math.isfinite(value) and (0 < value <= 1 or (zero_ok and value == 0)):
        return
    _fail(key, value, f"null, an integer >= {low} (batches) or a fraction in (0, 1]")


def monitorable(cfg: DictConfig) -> list[str]:
    """The metrics logged at every validation that a checkpoint or early stopping can watch."""
    names = ["val/acc", "val/loss", "val/loss_ce", "val/loss_imp", "val/loss_inter"]
    if cfg.vmask.beta > 0:
        names.append("val/loss_info")
    if cfg.srs.enabled:  # analysis.srs.flat_metrics of the validation SRS
        per_k = ("srs", "acc_capacity", "acc_random", "gap", "comprehensiveness", "sufficiency")
        names += [f"val/{name}@{float(k):g}" for name in per_k for k in cfg.srs.val_ks]
        names += ["val/aopc_comprehensiveness", "val/aopc_sufficiency"]
        names += [f"val/capacity_{part}" for part in ("all", "important", "rest")]
    return names


def validate_loop(cfg: DictConfig) -> None:
    """The trainer, checkpoint and early-stopping keys, against what Lightning accepts and this loop logs."""
    t = cfg.trainer
    if not _is_int(t.max_epochs) or t.max_epochs == 0 or t.max_epochs < -1:
        _fail("trainer.max_epochs", t.max_epochs, "an integer >= 1 (or -1 with trainer.max_steps >= 1)")
    if not _is_int(t.max_steps) or t.max_steps == 0 or t.max_steps < -1:
        _fail("trainer.max_steps", t.max_steps, "-1 (no limit) or an integer >= 1")
    if t.max_epochs == -1 and t.max_steps == -1:
        _fail("trainer.max_epochs", t.max_epochs, "an integer >= 1 when trainer.max_steps=-1 (training must end)")
    if not _is_int(t.min_epochs) or t.min_epochs < 0 or (t.max_epochs >= 1 and t.min_epochs > t.max_epochs):
        _fail("trainer.min_epochs", t.min_epochs, f"an integer in [0, trainer.max_epochs={t.max_epochs}]")
    _check_limit("trainer.limit_train_batches", t.limit_train_batches, zero_ok=False)
    # Validation picks the checkpoint (and stops training); the test is what results.json reports.
    _check_limit("trainer.limit_val_batches", t.limit_val_batches, zero_ok=False)
    _check_limit("trainer.limit_test_batches", t.limit_test_batches, zero_ok=not cfg.run_test)
    if not (isinstance(t.fast_dev_run, bool) or (_is_int(t.fast_dev_run) and t.fast_dev_run >= 0)):
        _fail("trainer.fast_dev_run", t.fast_dev_run, "true | false | an integer >= 0 (batches)")
    if not _is_int(t.log_every_n_steps) or t.log_every_n_steps < 1:
        _fail("trainer.log_every_n_steps", t.log_every_n_steps, "an integer >= 1")
    if not _is_int(t.num_sanity_val_steps) or t.num_sanity_val_steps < -1:
        _fail("trainer.num_sanity_val_steps", t.num_sanity_val_steps, "-1 (all) or an integer >= 0")
    clip = t.gradient_clip_val
    if clip is not None and not (math.isfinite(clip) and clip >= 0):
        _fail("trainer.gradient_clip_val", clip, "null or a finite number >= 0")
    devices = t.devices
    plain = _is_int(devices) and (devices >= 1 or devices == -1)
    listed = OmegaConf.is_list(devices) and len(devices) > 0 and all(_is_int(d) and d >= 0 for d in devices)
    named = isinstance(devices, str) and (devices == "auto" or re.fullmatch(r"-1|\d+(,\d+)*,?", devices))
    if not (plain or listed or named):
        _fail("trainer.devices", devices, "auto | an integer >= 1 | -1 (all) | a list of device indices, e.g. [0,1]")
    monitors = monitorable(cfg)
    cb = cfg.callbacks
    for name, node in (("checkpoint", cb.checkpoint), ("early_stopping", cb.early_stopping)):
        if name == "early_stopping" and not node.enabled:
            continue
        if node.monitor not in monitors:
            _fail(f"callbacks.{name}.monitor", node.monitor, " | ".join(monitors))
        if node.mode not in ("min", "max"):
            _fail(f"callbacks.{name}.mode", node.mode, "min | max")
    es = cb.early_stopping
    if not _is_int(es.patience) or es.patience < 1:
        _fail("callbacks.early_stopping.patience", es.patience, "an integer >= 1")
    if not (math.isfinite(es.min_delta) and es.min_delta >= 0):
        _fail("callbacks.early_stopping.min_delta", es.min_delta, "a finite number >= 0")


def validate_fidelity(fidelity: Any) -> None:
    """Values, and the combinations that would make a text's numbers depend on its batch."""
    choices = {
        "name": FIDELITY_PRESETS,
        "pad_embedding": PAD_EMBEDDINGS,
        "regularizers": REGULARIZERS,
        "init": INITS,
        "test_on": TEST_ON,
    }
    for key, allowed in choices.items():
        if fidelity[key] not in allowed:
            _fail(f"fidelity.{key}", fidelity[key], " | ".join(allowed))
    if not fidelity.fixed_padding:
        # Without a fixed length, the PAD count of a text would be set by the longest text of its batch.
        if fidelity.pool_over_pad:
            _fail(
                "fidelity.pool_over_pad", True, "false unless fidelity.fixed_padding=true (PAD count set by the batch)"
            )
        if fidelity.regularizers == "paper":
            _fail(
                "fidelity.regularizers",
                "paper",
                "exact unless fidelity.fixed_padding=true (PAD count set by the batch)",
            )


def validate_srs(srs: Any) -> None:
    """Checks shared by ``train`` and ``evaluate``."""
    if len(srs.ks) == 0:
        _fail("srs.ks", list(srs.ks), "a non-empty list of percentages in (0, 100)")
    for k in srs.ks:
        if not (math.isfinite(k) and 0 < k < 100):
            _fail("srs.ks", list(srs.ks), "percentages strictly between 0 and 100")
    if len({float(k) for k in srs.ks}) != len(srs.ks):  # a repeated k would count twice in the AOPC means
        _fail("srs.ks", list(srs.ks), "percentages in (0, 100), each once")
    val_ks = srs.get("val_ks", [30.0])
    if len(val_ks) == 0 or not all(math.isfinite(k) and 0 < k < 100 for k in val_ks):
        _fail("srs.val_ks", list(val_ks), "a non-empty list of percentages strictly between 0 and 100")
    if srs.get("val_random_draws", 1) < 1:
        _fail("srs.val_random_draws", srs.val_random_draws, "an integer >= 1")
    if srs.scorer not in SCORERS:
        _fail("srs.scorer", srs.scorer, " | ".join(SCORERS))
    if srs.layer not in TRACE_LAYERS:
        _fail("srs.layer", srs.layer, " | ".join(TRACE_LAYERS))
    if srs.random_draws < 1:
        _fail("srs.random_draws", srs.random_draws, "an integer >= 1")
    if srs.val_samples < 0:
        _fail("srs.val_samples", srs.val_samples, "an integer >= 0 (0 turns validation SRS off)")
    if srs.get("val_every_n_epochs", 1) < 1:
        _fail("srs.val_every_n_epochs", srs.val_every_n_epochs, "an integer >= 1")
    if not 0 <= srs.seed <= MAX_SEED:
        _fail("srs.seed", srs.seed, f"an integer in [0, {MAX_SEED}]")


def validate_figures(prefix: str, figures: Any) -> None:
    """Checks shared by the figures callback and ``explain``."""
    if figures.layer not in TRACE_LAYERS:
        _fail(f"{prefix}.layer", figures.layer, " | ".join(TRACE_LAYERS))
    if figures.top_pairs < 0:
        _fail(f"{prefix}.top_pairs", figures.top_pairs, "an integer >= 0")
    if figures.max_texts < 1:
        _fail(f"{prefix}.max_texts", figures.max_texts, "an integer >= 1")
    bad = [f for f in figures.formats if f not in FIGURE_FORMATS]
    if bad or not figures.formats:
        _fail(f"{prefix}.formats", list(figures.formats), "a non-empty list of " + " | ".join(FIGURE_FORMATS))
    if "n_texts" in figures and figures.n_texts < 0:
        _fail(f"{prefix}.n_texts", figures.n_texts, "an integer >= 0")
    if "dpi" in figures and not 10 <= figures.dpi <= 1200:
        _fail(f"{prefix}.dpi", figures.dpi, "an integer in [10, 1200]")
    if "max_tokens" in figures and figures.max_tokens < 2:
        _fail(f"{prefix}.max_tokens", figures.max_tokens, "an integer >= 2")


def validate_neurons(cfg: Any) -> None:
    """``python -m safr_lightning.neurons``'s values (conf/neurons.yaml)."""
    if cfg.split not in ("test", "validation"):
        _fail("split", cfg.split, "test | validation")
    if cfg.limit is not None and cfg.limit < 1:
        _fail("limit", cfg.limit, "null or an integer >= 1")
    if cfg.eval_batch_size is not None and not 1 <= cfg.eval_batch_size <= MAX_BATCH:
        _fail("eval_batch_size", cfg.eval_batch_size, f"null or an integer in [1, {MAX_BATCH}]")
    if not 1 <= cfg.top_k <= 10_000:
        _fail("top_k", cfg.top_k, "an integer in [1, 10000]")
    for key, values in (("threshold", [cfg.threshold]), ("sweep_thresholds", list(cfg.sweep_thresholds))):
        if not all(math.isfinite(t) and 0 < t < 2 for t in values):
            _fail(key, values[0] if key == "threshold" else values, "cosine distances in (0, 2)")
    if cfg.show_neurons < 0:
        _fail("show_neurons", cfg.show_neurons, "an integer >= 0")
    bad = [f for f in cfg.formats if f not in FIGURE_FORMATS]
    if bad or not cfg.formats:
        _fail("formats", list(cfg.formats), "a non-empty list of " + " | ".join(FIGURE_FORMATS))
