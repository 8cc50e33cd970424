"""The schema every Hydra composition is merged into: one typed dataclass per config block.

Types and unknown keys are checked by OmegaConf while Hydra composes (``lambda.imp=abc`` and
``model.foo=1`` fail there); value ranges are :mod:`safr_lightning.config.validation`'s. The
defaults live here (and in ``ModelConfig`` / ``SyntheticConfig`` beside what they configure), not in
the YAML files, which state only what a choice changes.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, OmegaConf

from safr_lightning.data.synthetic import SyntheticConfig
from safr_lightning.model.config import ModelConfig, VMaskConfig

DATASETS = ("sst2", "imdb", "synthetic", "local")
MODELS = ("safr", "baseline")
SCORERS = ("capacity", "random", "vmask", "attention")
LOGGERS = ("wandb", "csv", "none")
# What Lightning 2.x accepts (lightning.fabric.plugins.precision.precision._PRECISION_INPUT*); named
# here so a typo fails before torch is imported.
PRECISIONS = (
    "auto",  # ours: bf16-mixed where the hardware computes bf16 natively, else 32-true (precision.py)
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
FIGURE_FORMATS = ("png", "svg", "pdf")  # what plots.style.save_figure writes
TRACE_LAYERS = ("embedding", "vmask", "attn_out", "fc1_in", "fc1", "fc2", "block_out")
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
class PathsConfig:
    """``paths.*``: where runs read and write (lightning-hydra-template's ``paths`` group).

    Relative output roots are taken from the directory the command runs in.
    """

    # The root of the offline data copies (<root>/sst2/train.parquet, ...); null: the Hugging Face Hub.
    data_dir: str | None = "${oc.env:SAFR_DATA_DIR,null}"
    # Single runs: <output_dir>/<dataset>/<date>/<time>/; sweeps: <multirun_dir>/<sweep_name>/<date>/<time>/.
    output_dir: str = "outputs"
    multirun_dir: str = "multirun"


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
    # After training, the full protocol (ks x random_draws) on the whole validation split with the
    # checkpoint that is tested: results.json's val.final (the objectives of hparams_search=pareto).
    final_val: bool = False
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


@dataclass
class NeuronsConfig:
    """``python -m safr_lightning.neurons`` (conf/neurons.yaml): FC1 neuron polysemy of a checkpoint."""

    # A .ckpt file, or a run directory (its results.json's checkpoint, else checkpoints/best.ckpt).
    ckpt_path: str | None = None
    # null: the checkpoint's own training dataset config; `dataset=imdb` etc. picks another.
    dataset: DatasetConfig | None = None
    split: str = "test"
    limit: int | None = None  # the first `limit` texts of the split; null: all
    eval_batch_size: int | None = None  # null: the checkpoint's data.eval_batch_size
    device: str = "cpu"
    # Each neuron's strongest (text, position) examples that are clustered.
    top_k: int = 50
    # Average-linkage cut on the cosine distance 1 - S_C between neuron embeddings, in (0, 2). On SST-2
    # models, examples of the same word lie ~0.1 apart and of different words ~0.8 (median): 0.5 splits
    # a neuron's examples by what they are, context included; higher values merge similar words.
    threshold: float = 0.5
    # Also summarised at these cuts (clustering is cheap once the embeddings exist).
    sweep_thresholds: list[float] = field(default_factory=lambda: [0.3, 0.5, 0.7, 0.8, 0.9])
    # Neurons shown with their clusters and example tokens in context.
    show_neurons: int = 4
    # null: <run dir>/neurons/ (neurons.json and the figures).
    out_dir: str | None = None
    formats: list[str] = field(default_factory=lambda: ["png"])


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
        "paths": PathsConfig,
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
