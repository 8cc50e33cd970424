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
    RESUME_FROM,
    RUN_DIR,
    finished_count,
    import_records,
    make_sampler,
    open_study,
    parse_objectives,
    read_results,
    requeue_interrupted,
    resume_checkpoint,
    save_trial_record,
    storage_url,
    study_lock,
    trial_values,
)

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

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None
        self._check_arguments(arguments)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(sweep_dir / "multirun.yaml", OmegaConf.to_yaml(self.config))
        url = storage_url(sweep_dir, self.storage)
        returns = []
        with study_lock(sweep_dir):
            study = open_study(self.study_name, url, ["maximize"] * len(self.objectives))
            if self.records is not None:
                imported = import_records(study, self.records, {p.name: p.bounds for p in self.space})
                if imported:
                    log.info("study %s: %d trials from the records in %s", self.study_name, imported, self.records)
            requeued = requeue_interrupted(study)
            if requeued:
                log.info("study %s: trials %s were interrupted; their points run again", self.study_name, requeued)
            log.info(
                "study %s in %s: %d of %d trials finished", self.study_name, url, finished_count(study), self.n_trials
            )
            while (done := finished_count(study)) < self.n_trials:
                trials, batch = self._ask(study, arguments, min(self.n_jobs, self.n_trials - done))
                self.validate_batch_is_legal(batch)
                results = self.launcher.launch(batch, initial_job_idx=trials[0].number)
                for trial, _ in zip(trials, results, strict=True):
                    run_dir = Path(trial.user_attrs[RUN_DIR])
                    values, why = trial_values(run_dir, self.objectives)
                    if values is None:
                        trial.set_user_attr(REASON, why)
                        study.tell(trial, state=TrialState.FAIL)
                        log.warning("trial %d failed: %s", trial.number, why)
                    else:
                        study.tell(trial, values)
                    if self.records is not None:
                        state = TrialState.FAIL if values is None else TrialState.COMPLETE
                        save_trial_record(
                            self.records, study.trials[trial.number], state, values, read_results(run_dir)
                        )
                returns.append(results)
        return returns

    def _ask(self, study: Any, arguments: list[str], size: int) -> tuple[list[Any], list[list[str]]]:
        trials, batch = [], []
        for _ in range(size):
            number = len(study.get_trials(deepcopy=False))
            # Seeded per trial: the proposal depends on (seed, history), not on how many launches it took.
            study.sampler = make_sampler(
                self.sampler, self.seed * 1_000_003 + number, self.n_startup_trials, self.n_jobs > 1
            )
            trial = study.ask()
            values = {p.key: p.value(trial.suggest_float(p.name, *p.bounds)) for p in self.space}
            overrides = [*arguments, *(f"{key}={value!r}" for key, value in values.items())]
            resume = resume_checkpoint(str(trial.user_attrs.get(RESUME_FROM, "")))
            if resume is not None:
                overrides.append(f"ckpt_path={resume}")
            for key, value in values.items():
                trial.set_user_attr(key, value)
            trial.set_user_attr(OVERRIDES, overrides)
            trial.set_user_attr(RUN_DIR, str(self._run_dir(overrides, trial.number)))
            trials.append(trial)
            batch.append(overrides)
        return trials, batch
