"""The run configuration: the typed schema (:mod:`.schema`), its value checks (:mod:`.validation`),
and :func:`register_configs`, which gives Hydra the schemas that ``conf/*.yaml`` extend."""

from __future__ import annotations

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from safr_lightning.config.schema import (
    DataConfig,
    DatasetConfig,
    EvaluateConfig,
    ExplainConfig,
    FidelityConfig,
    ModelConfig,
    NeuronsConfig,
    SRSConfig,
    SyntheticConfig,
    TrainConfig,
    VMaskConfig,
)
from safr_lightning.config.validation import validate, validate_figures, validate_neurons, validate_srs
from safr_lightning.resume import RESOLVER, run_dir_for

__all__ = [
    "DataConfig",
    "DatasetConfig",
    "EvaluateConfig",
    "ExplainConfig",
    "FidelityConfig",
    "ModelConfig",
    "NeuronsConfig",
    "SRSConfig",
    "SyntheticConfig",
    "TrainConfig",
    "VMaskConfig",
    "register_configs",
    "validate",
    "validate_figures",
    "validate_neurons",
    "validate_srs",
]


def register_configs() -> None:
    """Register the schemas that ``conf/train.yaml``, ``conf/evaluate.yaml`` and ``conf/explain.yaml``
    extend, and the ``${safr.run_dir:...}`` resolver with which ``ckpt_path=<run dir>`` continues in that dir."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="evaluate_schema", node=EvaluateConfig)
    cs.store(name="explain_schema", node=ExplainConfig)
    cs.store(name="neurons_schema", node=NeuronsConfig)
    # hparams_search=pareto's sweeper (conf/hparams_search/pareto.yaml); imported here, not as a
    # hydra_plugins package: a namespace package inside an editable install is fragile.
    from safr_lightning.search.config import ParetoSweeperConf

    cs.store(group="hydra/sweeper", name="safr_pareto", node=ParetoSweeperConf, provider="safr_lightning")
    OmegaConf.register_new_resolver(RESOLVER, run_dir_for, replace=True)
