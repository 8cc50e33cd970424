"""The toy sweep's typed config (``conf/toy.yaml``): torch-free, so a bad value fails before torch loads.

OmegaConf checks types and unknown keys while Hydra composes (``toy.steps=abc``,
``toy.stpes=1``); :func:`validate` checks the ranges a type cannot express and raises a one-line
:class:`~safr_lightning.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

from safr_lightning.config.schema import FIGURE_FORMATS, MAX_SEED
from safr_lightning.errors import ConfigError

LR_SCHEDULES = ("cosine", "constant")
SCHEMA_NAME = "toy_schema"


@dataclass
class ToySettings:
    """The ``toy`` block: the model, the sweep grid and training."""

    n_features: int = 20  # n
    n_hidden: int = 5  # m < n
    # S: each feature is 0 with probability S. 1 − S roughly log-spaced from 1 to 0.001.
    sparsities: list[float] = field(default_factory=lambda: [0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99, 0.997, 0.999])
    decays: list[float] = field(default_factory=lambda: [1.0, 0.9, 0.8, 0.7])  # I_i = decay^i
    penalty: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.3])  # λ of SAFR's importance penalty
    replicates: int = 3  # independent seeds (init and data) per cell
    steps: int = 10_000
    batch_size: int = 1024
    lr: float = 1e-3
    lr_schedule: str = "cosine"  # cosine | constant
    eval_samples: int = 100_000  # held-out samples for the reconstruction loss, shared by all cells
    # Figure (b): per-feature capacity bars at this decay and these sparsities (values of `sparsities`).
    bar_decay: float = 0.7
    bar_sparsities: list[float] = field(default_factory=lambda: [0.0, 0.7, 0.9, 0.99])
    # "Equal reconstruction loss": a penalized cell's normalized loss within this relative distance
    # of the unpenalized one (same replicate, sparsity and decay).
    match_tolerance: float = 0.05


@dataclass
class ToyConfig:
    """``conf/toy.yaml``: ``python -m safr_lightning.toy [toy.KEY=VALUE ...]``."""

    toy: ToySettings = field(default_factory=ToySettings)
    seed: int = 0
    threads: int = 1  # torch.set_num_threads: the sweep is one batched model; 1 is deterministic
    formats: list[str] = field(default_factory=lambda: ["png", "svg"])
    dpi: int = 150


def register_toy_config() -> None:
    """Give Hydra the schema that ``conf/toy.yaml`` extends."""
    ConfigStore.instance().store(name=SCHEMA_NAME, node=ToyConfig)


def _fail(key: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"invalid config: {key}={value!r}; allowed: {allowed}")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_list(key: str, values: Sequence[Any], ok: Any, allowed: str) -> None:
    if len(values) == 0:
        _fail(key, [], f"a non-empty list of {allowed}")
    for value in values:
        if not _finite(value) or not ok(value):
            _fail(key, value, allowed)
    if len(set(values)) != len(values):
        _fail(key, list(values), f"a list of distinct {allowed}")


def validate(cfg: Any) -> None:
    """Check every value range of a composed :class:`ToyConfig`; raise ConfigError (one line) if not."""
    toy = cfg.toy
    if not toy.n_hidden > 0:
        _fail("toy.n_hidden", toy.n_hidden, "an integer > 0")
    if not toy.n_features > toy.n_hidden:
        _fail("toy.n_features", toy.n_features, f"an integer > toy.n_hidden ({toy.n_hidden})")
    _check_list("toy.sparsities", toy.sparsities, lambda s: 0 <= s < 1, "numbers S with 0 <= S < 1")
    _check_list("toy.decays", toy.decays, lambda d: 0 < d <= 1, "numbers d with 0 < d <= 1")
    _check_list("toy.penalty", toy.penalty, lambda lam: lam >= 0, "finite numbers >= 0")
    for key in ("replicates", "steps", "batch_size", "eval_samples"):
        if not getattr(toy, key) > 0:
            _fail(f"toy.{key}", getattr(toy, key), "an integer > 0")
    if not _finite(toy.lr) or not toy.lr > 0:
        _fail("toy.lr", toy.lr, "a finite number > 0")
    if toy.lr_schedule not in LR_SCHEDULES:
        _fail("toy.lr_schedule", toy.lr_schedule, " | ".join(LR_SCHEDULES))
    if toy.bar_decay not in toy.decays:
        _fail("toy.bar_decay", toy.bar_decay, f"one of toy.decays {list(toy.decays)}")
    for s in toy.bar_sparsities:
        if s not in toy.sparsities:
            _fail("toy.bar_sparsities", s, f"values of toy.sparsities {list(toy.sparsities)}")
    if not _finite(toy.match_tolerance) or not toy.match_tolerance >= 0:
        _fail("toy.match_tolerance", toy.match_tolerance, "a finite number >= 0")
    if not 0 <= cfg.seed <= MAX_SEED:
        _fail("seed", cfg.seed, f"an integer in [0, {MAX_SEED}]")
    if not cfg.threads > 0:
        _fail("threads", cfg.threads, "an integer > 0")
    bad = [f for f in cfg.formats if f not in FIGURE_FORMATS]
    if bad or not cfg.formats:
        _fail("formats", bad[0] if bad else [], f"a non-empty list of {' | '.join(FIGURE_FORMATS)}")
    if not cfg.dpi > 0:
        _fail("dpi", cfg.dpi, "an integer > 0")
