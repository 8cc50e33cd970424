"""Hydra finds sweepers only in the ``hydra_plugins`` namespace: this is the door, the search itself is
:mod:`safr_lightning.search.sweeper` (imported only when a search runs: every Hydra start scans
this module, and Optuna is slow to import)."""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class ParetoSweeper(Sweeper):
    def __init__(self, **settings: Any) -> None:
        from safr_lightning.search.sweeper import ParetoSearch

        self.search = ParetoSearch(**settings)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.search.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        return self.search.sweep(arguments)
