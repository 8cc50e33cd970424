"""The config of ``hydra/sweeper=safr_pareto`` (registered by :func:`safr_lightning.config.register_configs`;
kept apart from the sweeper so that composing a config never imports Optuna)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ParetoSweeperConf:
    """``hydra.sweeper`` of ``hparams_search=pareto`` (every key overridable: hydra.sweeper.n_trials=60)."""

    _target_: str = "hydra_plugins.safr_pareto_sweeper.safr_pareto_sweeper.ParetoSweeper"
    study_name: str = "pareto"
    storage: str | None = None  # default: sqlite:///<sweep dir>/study.db
    # A folder for one small json per finished trial (commit it): a new machine continues the study
    # from them when the sweep folder is gone. null: the study lives in the sweep folder only.
    records: str | None = None
    n_trials: int = 40  # finished trials the study should have (a resumed study runs the rest)
    n_jobs: int = 1  # trials per launch batch (in parallel with a parallel launcher)
    seed: int = 0
    sampler: str = "tpe"
    n_startup_trials: int = 10
    objectives: list[str] = field(default_factory=lambda: ["val/acc", "val/srs@30"])
    params: dict[str, Any] = field(
        default_factory=lambda: {
            "imp": {"low": 0.001, "high": 100.0, "zero": 1.0},  # lambda.imp
            "inter": {"low": 0.001, "high": 100.0, "zero": 1.0},  # lambda.inter
        }
    )
