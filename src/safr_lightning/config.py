"""Structured configs: the schema every Hydra composition is merged into.

Types and unknown keys are checked by OmegaConf while Hydra composes (``lambda.imp=abc`` and
``model.foo=1`` fail there). Value ranges that a type cannot express (λ ≥ 0, k in (0, 100), ...)
are checked by :func:`validate` before anything is built, so a bad value costs one line, not a run.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from safr_lightning.data.synthetic import SyntheticConfig
from safr_lightning.errors import ConfigError
from safr_lightning.fidelity import FIDELITY_PRESETS
from safr_lightning.resume import RESOLVER, run_dir_for

DATASETS = ("sst2", "imdb", "synthetic", "local")
MODELS = ("safr", "baseline")
SCORERS = ("capacity", "random", "vmask", "attention")
LOGGERS = ("wandb", "csv", "none")
# What Lightning 2.x accepts (lightning.fabric.plugins.precision.precision._PRECISION_INPUT*); named
# here so a typo fails before torch is imported.
PRECISIONS = (
    "32-true", "32", "16-mixed", "16", "bf16-mixed", "bf16", "16-true", "bf16-true", "64-true", "64",
    "transformer-engine", "transformer-engine-float16",
)  # fmt: skip
CARVES = ("stratified", "per_class_head")
PAD_EMBEDDINGS = ("zero", "trained")
REGULARIZERS = ("exact", "paper")
INITS = ("exact", "paper")
TEST_ON = ("best", "last")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
OPTIMIZERS = ("adam", "adamw")
SCHEDULERS = ("none", "cosine", "linear")
MAX_SEED = 2**32 - 1  # numpy's bound, enforced by Lightning's seed_everything
MAX_BATCH = 2**31 - 1  # what the samplers' index arithmetic holds
TRACE_LAYERS = ("embedding", "vmask", "attn_out", "fc1", "fc2", "block_out")
SWEEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# `${safr.pid:}` makes a sweep folder unique (conf/train.yaml, hydra.sweep.dir). Cached, so every job
# of a sweep sees the launching process's id. Registered at import, not in register_configs(): joblib
# and submitit workers unpickle the task without running train.py's module code, yet resolve the dir.
OmegaConf.register_new_resolver("safr.pid", os.getpid, use_cache=True, replace=True)


@dataclass
class DatasetConfig:
    name: str = MISSING
    hub_id: str | None = None
    hub_config: str | None = None
    # Offline source: a directory with {train,validation,test}.{parquet,csv,jsonl}.
    # Defaults to $SAFR_DATA_DIR/<name> for the named datasets (see data/sources.py).
    local_dir: str | None = None
    max_len: int = 128
    num_classes: int = 2
    # A missing validation split is carved from train: a count (>= 1) or a fraction (< 1).
    val_size: float = 0.1
    # Always carve validation from train, even when a validation split exists (IMDB).
    carve_validation: bool = False
    # The train/validation carve does not move with `seed`: seeds vary the model, not the data.
    split_seed: int = 0
    # How validation is carved: `stratified` (seeded, label-stratified random) or `per_class_head`
    # (per class, the first examples in file order stay in train and the rest is validation: the
    # paper's IMDB split, 10,000 + 10,000 train / 2,500 + 2,500 dev).
    carve: str = "stratified"
    lowercase: bool = True
    strip_html_breaks: bool = False
    min_freq: int = 2
    # String labels in local data, by class id: [neg, pos] maps "neg" -> 0, "pos" -> 1. Empty: integer labels.
    label_map: list[str] = field(default_factory=list)
    # Keep at most this many examples per split (quick runs, tests); null keeps all.
    limit_train: int | None = None
    limit_val: int | None = None
    limit_test: int | None = None
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class DataConfig:
    """How batches are made (independent of which dataset)."""

    batch_size: int = 32
    eval_batch_size: int = 128
    # Sort texts of similar length into the same batch (seeded, shuffled by batch) to cut padding.
    bucketing: bool = True
    bucket_batches: int = 50
    num_workers: int = 0
    pin_memory: bool = False
    persistent_workers: bool = False
    cache_dir: str | None = None


@dataclass
class VMaskConfig:
    hidden: int = 1024
    tau: float = 1.0
    # VMASK's information term, mean over real tokens of q log q + (1-q) log(1-q); 0 as in SAFR.
    beta: float = 0.0


@dataclass
class ModelConfig:
    name: str = "safr"
    vmask: bool = True
    d_model: int = 256
    n_heads: int = 8
    d_ff: int = 1024
    n_layers: int = 1
    dropout: float = 0.1
    compile: bool = False


@dataclass
class FidelityConfig:
    """Where the paper's official code (chili-lab/SAFR) departs from DESIGN's exact mode, one key each.

    ``fidelity=exact`` (the default) keeps padding out of every pooling, loss and metric;
    ``fidelity=paper`` (conf/fidelity/paper.yaml) switches every key below to the official code's
    behaviour, plus its tokenizer (``dataset.lowercase``/``strip_html_breaks`` false), its shuffled
    batches (``data.bucketing`` false) and its IMDB split (``dataset.carve``). Any key can then be
    switched back alone, e.g. ``fidelity=paper fidelity.pool_over_pad=false``.
    """

    # The preset these keys start from (conf/fidelity/<name>.yaml); results.json names every key
    # that differs from it.
    name: str = "exact"
    # Pad (and truncate) every text to dataset.max_len (128 SST-2, 256 IMDB) everywhere: training
    # batches, evaluation, the shortened SRS copies and `encode`. The model pads shorter inputs itself.
    fixed_padding: bool = False
    # zero: PAD's embedding row is fixed at 0 and VMASK's output is masked at PAD; trained: PAD is an
    # ordinary token (a trained row, VMASK applied), as in nn.Embedding without padding_idx.
    pad_embedding: str = "zero"
    # Mean pooling over every position, PAD included (the official x.mean(dim=1)); needs fixed_padding.
    pool_over_pad: bool = False
    # exact: DESIGN §5, real tokens only. paper: the official formulas over every position, PAD
    # included: L_imp averaged over B·L positions (norm eps 1e-5), L_inter = mean over B·H·L·L of
    # A·(1 − I) with I's diagonal zeroed and A's kept. Needs fixed_padding.
    regularizers: str = "exact"
    # exact: embedding N(0, 1/E) (× √E in forward: token norms ≈ √E, like the positional code's);
    # paper: nn.Embedding's default N(0, 1), so token norms ≈ E dwarf the positional encoding.
    init: str = "exact"
    # Which weights are tested: best (the best validation checkpoint) or last (the last epoch's:
    # the official `best_model_state = model.state_dict()` holds references, not a copy).
    test_on: str = "best"


@dataclass
class LambdaConfig:
    imp: float = 0.1
    inter: float = 0.1


@dataclass
class LossConfig:
    # Sum L_inter over all pairs (i, j) including i = j, over Σ n², as printed in the paper.
    inter_include_self: bool = False


@dataclass
class OptimConfig:
    name: str = "adam"  # adam | adamw (conf/optim/)
    lr: float = 1e-4
    weight_decay: float = 0.0
    # none | cosine | linear: warm up linearly over warmup_steps, then decay to 0 by the last step.
    scheduler: str = "none"
    warmup_steps: int = 0


@dataclass
class TrainerConfig:
    accelerator: str = "cpu"
    devices: Any = 1
    strategy: str = "auto"
    precision: str = "32-true"
    max_epochs: int = 100
    min_epochs: int = 1
    max_steps: int = -1
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    limit_test_batches: Any = None
    fast_dev_run: Any = False
    log_every_n_steps: int = 50
    gradient_clip_val: float | None = None
    num_sanity_val_steps: int = 0
    enable_progress_bar: bool = True
    deterministic: bool = False
    # Check the loss for NaN/inf every this many steps (1 = every step; each check syncs the device).
    nan_check_every: int = 1
    # Jobs sharing one GPU in a joblib sweep (one job cannot fill a large GPU): see gpu_slots.py.
    jobs_per_gpu: int = 1
    # Any other lightning.Trainer keyword (accumulate_grad_batches, profiler, overfit_batches, ...),
    # checked against Trainer's signature before the run starts.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class EarlyStoppingConfig:
    enabled: bool = True
    monitor: str = "val/acc"
    mode: str = "max"
    patience: int = 3
    min_delta: float = 0.0


@dataclass
class CheckpointConfig:
    monitor: str = "val/acc"
    mode: str = "max"
    save_last: bool = True


@dataclass
class FiguresConfig:
    """Neuron-allocation figures at test end (callbacks/figures.py): into ``<run dir>/figures/``, and
    to W&B as images when the W&B logger is on."""

    enabled: bool = True
    # The first n_texts texts of the test split get a token graph and the across-layer figures.
    n_texts: int = 3
    layer: str = "fc1"
    top_pairs: int = 15
    # Important vs other tokens over (at most max_texts of) the test split; needs VMASK.
    group_stats: bool = True
    max_texts: int = 2000
    # PNG is what W&B shows; add svg for vector files (each format costs a full render).
    formats: list[str] = field(default_factory=lambda: ["png"])


@dataclass
class CallbacksConfig:
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    figures: FiguresConfig = field(default_factory=FiguresConfig)
    # More Lightning callbacks, each {_target_: dotted.Class, ...kwargs}, instantiated by Hydra.
    extra: list[Any] = field(default_factory=list)


@dataclass
class LoggerConfig:
    name: str = "wandb"
    project: str = "safr"
    entity: str | None = None
    group: str | None = None
    tags: list[str] = field(default_factory=list)
    # online / offline / disabled; null: online when W&B credentials exist, offline otherwise.
    mode: str | None = None
    log_model: bool = False
    # More loggers beside this one, each {_target_: dotted.LoggerClass, ...kwargs} (save_dir defaults to
    # the run dir), e.g. lightning.pytorch.loggers.TensorBoardLogger or CSVLogger next to W&B.
    extra: list[Any] = field(default_factory=list)


@dataclass
class SRSConfig:
    enabled: bool = True
    ks: list[float] = field(default_factory=lambda: [10.0, 20.0, 30.0, 40.0, 50.0])
    scorer: str = "capacity"
    layer: str = "fc1"
    random_draws: int = 3
    val_samples: int = 1000
    val_every_n_epochs: int = 1
    # Validation SRS runs every epoch inside training: one k and one random draw by default keep it
    # near the cost of one validation pass (the full protocol of ks x draws costs ~10 passes).
    val_ks: list[float] = field(default_factory=lambda: [30.0])
    val_random_draws: int = 1
    seed: int = 0


@dataclass
class ExplainConfig:
    """``python -m safr_lightning.explain`` (conf/explain.yaml)."""

    # A checkpoint file, or a run directory (its checkpoints/best.ckpt).
    ckpt_path: str | None = None
    text: str | None = None
    texts: list[str] = field(default_factory=list)
    # One text per line; blank lines are skipped.
    text_file: str | None = None
    # Default: <run dir>/explain/, the run dir being the checkpoint's (the parent of checkpoints/).
    out_dir: str | None = None
    layer: str = "fc1"
    top_pairs: int = 15
    max_tokens: int = 60
    # Token graph: interference of mean-centred representations (signed even after a ReLU).
    centre: bool = True
    # Also draw important vs other tokens over this split of the checkpoint's dataset (needs the data).
    split: str | None = None
    max_texts: int = 2000
    formats: list[str] = field(default_factory=lambda: ["png", "svg"])
    dpi: int = 150
    device: str = "cpu"


def _train_config_class() -> type:
    """Build ``TrainConfig``.

    ``lambda`` is a Python keyword, so it cannot be written as a dataclass field; the DESIGN's
    key is ``lambda.imp``, so we build the class from an annotations dict. ``init``/``repr``/``eq``
    are off because dataclasses would generate source code naming the field; OmegaConf only reads
    ``dataclasses.fields``.
    """
    annotations: dict[str, Any] = {
        "seed": int,
        "dataset": DatasetConfig,
        "data": DataConfig,
        "model": ModelConfig,
        "vmask": VMaskConfig,
        "lambda": LambdaConfig,
        "fidelity": FidelityConfig,
        "loss": LossConfig,
        "optim": OptimConfig,
        "trainer": TrainerConfig,
        "callbacks": CallbacksConfig,
        "logger": LoggerConfig,
        "srs": SRSConfig,
        "ckpt_path": str | None,
        "run_test": bool,
        "task_name": str,
        "sweep_name": str,
        # Free labels for the run (W&B tags and results.json); they change no number.
        "tags": list[str],
    }
    namespace: dict[str, Any] = {
        "__annotations__": annotations,
        "__doc__": "The composed training configuration (conf/train.yaml).",
        "seed": 0,
        "ckpt_path": None,
        "run_test": True,
        "task_name": "train",
        "sweep_name": "adhoc",
        "tags": field(default_factory=list),
    }
    for key, kind in annotations.items():
        if dataclasses.is_dataclass(kind):
            namespace[key] = field(default_factory=kind)
    return dataclass(init=False, repr=False, eq=False)(type("TrainConfig", (), namespace))


TrainConfig = _train_config_class()


@dataclass
class EvaluateConfig:
    """``conf/evaluate.yaml``: deletion evaluation of a checkpoint (``python -m safr_lightning.evaluate``)."""

    # A .ckpt file, or a run directory (its results.json's checkpoint, else checkpoints/best.ckpt).
    ckpt_path: str | None = None
    # null: the checkpoint's own training dataset config; `dataset=imdb` etc. picks another.
    dataset: DatasetConfig | None = None
    split: str = "test"
    # Evaluate only the first `limit` texts of the split; null: all.
    limit: int | None = None
    # null: the checkpoint's data.eval_batch_size.
    eval_batch_size: int | None = None
    device: str = "cpu"
    # null: <run dir>/evaluation.json (evaluation_<scorer...>.json for non-default settings).
    output: str | None = None
    srs: SRSConfig = field(default_factory=SRSConfig)
    # W&B: null logs the evaluation as a run (job_type evaluate) in the training run's group when
    # the training run logged to W&B (its results.json has a `wandb` block); none | wandb force it.
    logger: str | None = None


def register_configs() -> None:
    """Register the schemas that ``conf/train.yaml``, ``conf/evaluate.yaml`` and ``conf/explain.yaml``
    extend, and the ``${safr.run_dir:...}`` resolver with which ``ckpt_path=<run dir>`` continues in that dir."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="evaluate_schema", node=EvaluateConfig)
    cs.store(name="explain_schema", node=ExplainConfig)
    OmegaConf.register_new_resolver(RESOLVER, run_dir_for, replace=True)


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
    if cfg.srs.enabled:  # evaluation.srs.flat_metrics of the validation SRS
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


FIGURE_FORMATS = ("png", "svg", "pdf")


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
