"""``hydra/sweeper=safr_pareto`` (via hydra_plugins/safr_pareto_sweeper): asks an Optuna study for λ and launches runs.

Each trial is an ordinary job of the configured launcher (run dir, results.json, W&B run in the
sweep's group), so everything the project does with runs works on trials; the sweeper only chooses
``lambda.imp`` / ``lambda.inter``, reads the job's validation objectives back from its results.json
(``val.final``, written with ``srs.final_val=true``) and tells the study. Why not
``hydra-optuna-sweeper``: see ``conf/hparams_search/pareto.yaml``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict
from optuna.trial import TrialState

from safr_lightning.errors import SAFRError
from safr_lightning.files import write_text_atomic
from safr_lightning.search.space import parse_space
from safr_lightning.search.study import (
    OVERRIDES,
    REASON,
    RUN_DIR,
    check_identity,
    finished_count,
    import_records,
    make_sampler,
    open_study,
    parse_objectives,
    read_results,
    requeue_interrupted,
    save_trial_record,
    storage_url,
    study_identity,
    study_lock,
    trial_values,
)
from safr_lightning.sweep import launch

log = logging.getLogger(__name__)


class ParetoSearch(Sweeper):
    def __init__(
        self,
        study_name: str,
        storage: str | None,
        n_trials: int,
        n_jobs: int,
        seed: int,
        sampler: str,
        n_startup_trials: int,
        objectives: list[str],
        params: dict[str, Any],
        records: str | None = None,
    ) -> None:
        self.study_name, self.storage, self.seed, self.sampler = study_name, storage, int(seed), str(sampler)
        self.records = Path(records) if records else None
        self.n_trials, self.n_jobs, self.n_startup_trials = int(n_trials), int(n_jobs), int(n_startup_trials)
        self.objectives = parse_objectives(list(objectives))
        self.space = parse_space(OmegaConf.to_container(params) if isinstance(params, DictConfig) else params)
        if self.n_trials < 1 or self.n_jobs < 1 or self.n_startup_trials < 0:
            raise SAFRError(
                f"invalid config: hydra.sweeper n_trials={n_trials}, n_jobs={n_jobs}, "
                f"n_startup_trials={n_startup_trials}: expected n_trials >= 1, n_jobs >= 1, n_startup_trials >= 0"
            )
        make_sampler(self.sampler, 0, 0, False)  # an unknown sampler fails before anything runs
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def _check_arguments(self, arguments: list[str]) -> None:
        assert self.hydra_context is not None
        parsed = OverridesParser.create(config_loader=self.hydra_context.config_loader).parse_overrides(arguments)
        swept = [o.input_line for o in parsed if o.is_sweep_override()]
        if swept:
            raise SAFRError(f"hparams_search takes one value per key; swept: {' '.join(map(str, swept))}")
        searched = {p.key for p in self.space}
        fixed = [o.input_line for o in parsed if o.get_key_element().lstrip("+~") in searched]
        if fixed:
            raise SAFRError(
                f"{' '.join(map(str, fixed))}: the search chooses these; leave them out or remove "
                "them from hydra.sweeper.params"
            )

    def _run_dir(self, overrides: list[str], num: int) -> Path:
        """The job dir Hydra will give job ``num`` (recorded before launching: a killed trial resumes from it)."""
        assert self.hydra_context is not None and self.config is not None
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(cfg):
            cfg.hydra.job.num = num
        return Path(cfg.hydra.sweep.dir) / str(cfg.hydra.sweep.subdir)

    def _check_config(self) -> None:
        """What would make every trial fail after a whole training: refused before the first one."""
        assert self.config is not None
        srs = self.config.srs
        if not srs.enabled or not srs.final_val:
            raise SAFRError(
                "hparams_search reads results.json val.final: it needs srs.enabled=true and srs.final_val=true"
            )
        ks = [float(k) for k in srs.ks]
        for objective in self.objectives:
            if objective.k is not None and objective.k not in ks:
                raise SAFRError(f"hydra.sweeper.objectives has {objective.name}, but srs.ks={ks} does not compute k = "
                                f"{objective.k:g}")  # fmt: skip

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None
        self._check_arguments(arguments)
        self._check_config()
        sweep_dir = Path(self.config.hydra.sweep.dir).resolve()
        url = storage_url(sweep_dir, self.storage)
        bounds = {p.name: p.bounds for p in self.space}
        returns = []
        with study_lock(sweep_dir):
            write_text_atomic(sweep_dir / "multirun.yaml", OmegaConf.to_yaml(self.config))
            study = open_study(self.study_name, url, ["maximize"] * len(self.objectives))
            check_identity(study, study_identity(arguments, self.objectives, bounds), url)
            if self.records is not None:
                imported = import_records(study, self.records, bounds)
                if imported:
                    log.info("study %s: %d trials from the records in %s", self.study_name, imported, self.records)
            recovered, requeued = requeue_interrupted(study, self.objectives)
            for number in recovered:
                self._record(study, number)
            if recovered or requeued:
                log.info("study %s: interrupted trials %s had finished; %s run again", self.study_name, recovered,
                         requeued)  # fmt: skip
            log.info(
                "study %s in %s: %d of %d trials finished", self.study_name, url, finished_count(study), self.n_trials
            )
            failed = 0
            while (done := finished_count(study)) < self.n_trials:
                trials, batch = self._ask(study, arguments, min(self.n_jobs, self.n_trials - done))
                self.validate_batch_is_legal(batch)
                results = self.launcher.launch(batch, initial_job_idx=trials[0].number)
                for trial, ret in zip(trials, results, strict=True):
                    values, why = self._values(trial, ret)
                    if values is None:
                        trial.set_user_attr(REASON, why)
                        study.tell(trial, state=TrialState.FAIL)
                        log.warning("trial %d failed: %s", trial.number, why)
                        failed += 1
                    else:
                        study.tell(trial, values)
                    self._record(study, trial.number)
                returns.append(results)
            launch.LAST.failed_by_sweeper = failed
        return returns

    def _values(self, trial: Any, ret: JobReturn) -> tuple[list[float] | None, str]:
        """The trial's objectives from its own run: not from a refused job's folder of another run."""
        if ret.status != JobStatus.COMPLETED or not isinstance(ret.return_value, dict):
            return None, "the job did not finish a run (failed or refused: see its folder and the log)"
        lambdas = {key: trial.user_attrs[key] for key in (p.key for p in self.space)}
        return trial_values(Path(trial.user_attrs[RUN_DIR]), self.objectives, lambdas)

    def _record(self, study: Any, number: int) -> None:
        if self.records is None:
            return
        trial = study.get_trials(deepcopy=False)[number]
        results = read_results(Path(trial.user_attrs[RUN_DIR])) if RUN_DIR in trial.user_attrs else None
        save_trial_record(self.records, study, trial, trial.values, results)

    def _ask(self, study: Any, arguments: list[str], size: int) -> tuple[list[Any], list[list[str]]]:
        trials, batch = [], []
        for _ in range(size):
            # Seeded by (seed, trials so far): the proposal depends on the history, not on how many launches it took.
            study.sampler = make_sampler(
                self.sampler, self.seed * 1_000_003 + len(study.get_trials(deepcopy=False)), self.n_startup_trials,
                self.n_jobs > 1,
            )  # fmt: skip
            trial = study.ask()
            values = {p.key: p.value(trial.suggest_float(p.name, *p.bounds)) for p in self.space}
            overrides = [*arguments, *(f"{key}={value!r}" for key, value in values.items())]
            for key, value in values.items():
                trial.set_user_attr(key, value)
            trial.set_user_attr(OVERRIDES, overrides)
            trial.set_user_attr(RUN_DIR, str(self._run_dir(overrides, trial.number).resolve()))
            trials.append(trial)
            batch.append(overrides)
        numbers = [t.number for t in trials]
        if numbers != list(range(numbers[0], numbers[0] + len(numbers))):  # Hydra numbers a batch's jobs in a row
            raise SAFRError(f"study {study.study_name!r}: trials {numbers} are not consecutive; another process "
                            "is asking this study")  # fmt: skip
        return trials, batch
