"""The Optuna study behind ``hparams_search=pareto``: storage, objectives, samplers, interrupted trials.

The study lives in SQLite inside the sweep folder (``<sweep dir>/study.db``), so the same command
continues a study that was killed: trials it had finished count, a trial that was running when the
launch died is marked failed (``interrupted``) and its point is tried again first, resuming from
that trial's ``last.ckpt`` when it has one. ``n_trials`` is the number of finished trials the study
should have, not a number to add.
"""

from __future__ import annotations

import fcntl
import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from safr_lightning.errors import SAFRError

STUDY_DB = "study.db"
LOCK_FILE = "study.lock"
SAMPLERS = ("tpe", "nsga2", "random")
# user_attrs of a trial
RUN_DIR, OVERRIDES, REASON = "run_dir", "overrides", "reason"


def storage_url(sweep_dir: Path, storage: str | None = None) -> str:
    """``storage`` if given, else the sweep folder's SQLite file (what ``optuna-dashboard`` opens)."""
    return storage or f"sqlite:///{(sweep_dir / STUDY_DB).resolve()}"


@dataclass(frozen=True)
class Objective:
    """``val/acc`` or ``val/<per-k metric>@<k>`` of results.json's ``val.final`` (never a test number)."""

    name: str

    def read(self, results: dict[str, Any]) -> float:
        from safr_lightning.results import value_at_k

        final = (results.get("val") or {}).get("final")
        if not final:
            raise KeyError("results.json has no val.final (srs.final_val=false?)")
        metric = self.name.removeprefix("val/")
        if "@" not in metric:
            return float(final[metric])
        name, k = metric.split("@", 1)
        value = value_at_k(final.get(name), float(k))
        if value is None:
            raise KeyError(f"val.final has no {name} at k = {k}")
        return float(value)

    @property
    def k(self) -> float | None:
        return float(self.name.split("@", 1)[1]) if "@" in self.name else None


def parse_objectives(names: Sequence[str]) -> list[Objective]:
    if len(names) < 2:
        raise SAFRError(f"invalid config: hydra.sweeper.objectives={list(names)}: a Pareto search needs 2 or more")
    for name in names:
        if not name.startswith("val/"):
            raise SAFRError(
                f"invalid config: hydra.sweeper.objectives has {name!r}: objectives are validation metrics "
                "(val/acc, val/srs@30, ...); a search never reads a test number"
            )
        if "@" in name:
            try:
                k = float(name.split("@", 1)[1])
            except ValueError:
                k = math.nan
            if not 0 < k < 100:
                raise SAFRError(f"invalid config: hydra.sweeper.objectives has {name!r}: k after @ must be in (0, 100)")
    return [Objective(name) for name in names]


# Task overrides that may change between launches of one study (where things run and are shown).
FREE_OVERRIDES = ("logger", "paths.", "trainer.enable_progress_bar", "trainer.accelerator", "trainer.devices",
                  "trainer.strategy", "trainer.jobs_per_gpu", "hparams_search", "callbacks.figures")  # fmt: skip
IDENTITY = "identity"


def study_identity(arguments: Sequence[str], objectives: Sequence[Objective], bounds: dict[str, Any]) -> dict[str, Any]:
    """What makes two launches the same study: the config overrides, the objectives, the space."""
    kept = sorted(a for a in arguments if not a.lstrip("+~").startswith(FREE_OVERRIDES))
    return {"overrides": kept, "objectives": [o.name for o in objectives],
            "space": {name: list(b) for name, b in sorted(bounds.items())}}  # fmt: skip


def check_identity(study: optuna.Study, identity: dict[str, Any], where: str) -> None:
    """A study keeps one configuration: a launch with another one is refused in one line."""
    stored = study.user_attrs.get(IDENTITY)
    if stored is None:
        study.set_user_attr(IDENTITY, identity)
        return
    for key in ("overrides", "objectives", "space"):
        if stored.get(key) != identity.get(key):
            raise SAFRError(
                f"study {study.study_name!r} ({where}) was started with {key} {stored.get(key)}; this launch has "
                f"{identity.get(key)}: use the same, or another hydra.sweeper.study_name / sweep dir"
            )


def make_sampler(kind: str, seed: int, n_startup_trials: int, parallel: bool) -> optuna.samplers.BaseSampler:
    """A sampler seeded for one ask: the study's draws depend on (seed, history) alone, so a
    resumed study proposes what the uninterrupted one would have from the same trials."""
    if kind == "tpe":
        # Multi-objective TPE: a model of the front after n_startup_trials random points. NSGA-II's
        # first generation (50 by default) is random search: too many for a 40-trial budget.
        return optuna.samplers.TPESampler(
            seed=seed, multivariate=True, n_startup_trials=n_startup_trials, constant_liar=parallel
        )
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise SAFRError(f"invalid config: hydra.sweeper.sampler={kind!r}: expected one of {', '.join(SAMPLERS)}")


@contextmanager
def study_lock(sweep_dir: Path) -> Iterator[None]:
    """One launch at a time per study: a second would take the first one's running trials for dead."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    path = sweep_dir / LOCK_FILE
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise SAFRError(f"another launch is running this study ({path} is locked); wait for it or stop it") from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """Optuna's storage at ``url``; one it cannot open (an unknown scheme, a file that is not a
    database, a folder that does not exist) is one line naming the URL."""
    try:
        return optuna.storages.get_storage(url)
    except Exception as exc:  # SQLAlchemy's errors, ImportError of a dialect, ValueError of a URL
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SAFRError(f"cannot open the study storage {url!r}: {first}") from exc


def open_study(name: str, url: str, directions: Sequence[str]) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url)
    study = optuna.create_study(study_name=name, storage=storage, directions=list(directions), load_if_exists=True)
    if [d.name.lower() for d in study.directions] != [d.lower() for d in directions]:
        raise SAFRError(
            f"study {name!r} in {url} optimises {[d.name.lower() for d in study.directions]}, not {list(directions)}: "
            "a different study_name (hydra.sweeper.study_name) or sweep dir"
        )
    return study


def requeue_interrupted(study: optuna.Study, objectives: Sequence[Objective]) -> tuple[list[int], list[int]]:
    """Trials left RUNNING by a launch that died: a run that finished anyway is told COMPLETE; the
    others are marked failed (interrupted, not counted) and their point is asked again, from scratch
    (resuming in a new folder would lose the best checkpoint the run had found)."""
    recovered, requeued = [], []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        run_dir = trial.user_attrs.get(RUN_DIR)
        lambdas = {k: trial.user_attrs.get(k) for k in ("lambda.imp", "lambda.inter") if k in trial.user_attrs}
        values, _ = trial_values(Path(run_dir), objectives, lambdas) if run_dir else (None, "")
        if values is not None:
            study.tell(trial.number, values)
            recovered.append(trial.number)
            continue
        study.tell(trial.number, state=TrialState.FAIL)  # no REASON attr: interrupted, not counted
        study.enqueue_trial(trial.params, skip_if_exists=False)
        requeued.append(trial.number)
    return recovered, requeued


def counted(trial: FrozenTrial) -> bool:
    """Does the trial use up the budget: finished, or failed by itself (a REASON; not killed with its launch)?"""
    return trial.state == TrialState.COMPLETE or (trial.state == TrialState.FAIL and REASON in trial.user_attrs)


def finished_count(study: optuna.Study) -> int:
    return sum(counted(t) for t in study.get_trials(deepcopy=False))


def read_json(path: Path) -> dict[str, Any] | None:
    """A json file's content; None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_results(run_dir: Path) -> dict[str, Any] | None:
    return read_json(run_dir / "results.json")


def trial_values(
    run_dir: Path, objectives: Sequence[Objective], lambdas: dict[str, float] | None = None
) -> tuple[list[float] | None, str]:
    """The objectives of the run in ``run_dir``, or (None, why not). ``lambdas``: what the trial asked
    for; a folder holding another run (a refused job's) does not answer for it."""
    results = read_results(run_dir)
    if results is None:
        return None, f"no readable results.json in {run_dir}"
    if results.get("status") != "ok":
        return None, str(results.get("error") or f"status {results.get('status')}")
    ran = results.get("lambda") or {}
    for key, value in (lambdas or {}).items():
        if ran.get(key.removeprefix("lambda.")) != value:
            return None, f"{run_dir} holds a run with {key}={ran.get(key.removeprefix('lambda.'))}, not {value}"
    try:
        values = [objective.read(results) for objective in objectives]
    except (KeyError, TypeError, ValueError) as exc:
        return None, f"results.json lacks an objective ({exc})"
    if not all(math.isfinite(v) for v in values):
        return None, f"non-finite objective {values}"
    return values, ""


# -- committed records: a study that outlives its sweep folder ---------------------------------------

TRIAL_RECORD = "trial_{:04d}.json"


def save_trial_record(records: Path, study: optuna.Study, trial: FrozenTrial, values: Sequence[float] | None,
                      results: dict[str, Any] | None) -> Path:  # fmt: skip
    """One finished trial (complete, or failed by itself) as a small json file, committable."""
    from safr_lightning.files import write_text_atomic
    from safr_lightning.sweep.export import compact

    path = records / TRIAL_RECORD.format(trial.number)
    _check_record_owner(path, study)
    attrs = {k: v for k, v in trial.user_attrs.items() if k != RUN_DIR}
    record = {
        "study": study.study_name, IDENTITY: study.user_attrs.get(IDENTITY), "number": trial.number,
        "state": trial.state.name, "params": dict(trial.params), "values": list(values) if values is not None else None,
        "user_attrs": attrs, "results": compact(results) if results is not None else None,
    }  # fmt: skip
    return write_text_atomic(path, json.dumps(record, indent=1) + "\n")


def _check_record_owner(path: Path, study: optuna.Study) -> None:
    if not path.is_file():
        return
    try:
        owner = json.loads(path.read_text()).get("study")
    except (OSError, ValueError, AttributeError):
        owner = None
    if owner != study.study_name:
        raise SAFRError(
            f"{path} is a record of study {owner!r}, not {study.study_name!r}: another hydra.sweeper.records"
        )


def read_trial_records(records: Path) -> dict[int, dict[str, Any]]:
    found = {}
    for path in sorted(records.glob("trial_*.json")):
        try:
            record = json.loads(path.read_text())
            found[int(record["number"])] = record
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SAFRError(f"unreadable trial record {path}: {exc}") from exc
    return found


def import_records(study: optuna.Study, records: Path, bounds: dict[str, tuple[float, float]]) -> int:
    """A fresh study (a new machine, a lost sweep folder) takes the committed trials, numbers kept.

    A number without a record (a trial interrupted with its launch) becomes a failed trial that does
    not count, so the numbers, and with them the run folders' names and the seeded proposals, line up.
    Records of another study or configuration are refused; a study that already has trials must
    agree with the records it would otherwise overwrite.
    """
    found = read_trial_records(records) if records.is_dir() else {}
    for number, record in found.items():
        if record.get("study") != study.study_name or record.get(IDENTITY) != study.user_attrs.get(IDENTITY):
            raise SAFRError(
                f"{records}: trial record {number} belongs to study {record.get('study')!r} with "
                f"{record.get(IDENTITY)}, not to this launch's {study.study_name!r} with "
                f"{study.user_attrs.get(IDENTITY)}: another hydra.sweeper.records"
            )
    existing = study.get_trials(deepcopy=False)
    if existing:
        for number, record in found.items():
            if number >= len(existing) or dict(existing[number].params) != record.get("params"):
                raise SAFRError(
                    f"{records} has trial {number} that this study's storage does not: continue from the "
                    "records alone (remove the sweep dir's study.db) or use another hydra.sweeper.records"
                )
        return 0
    if not found:
        return 0
    distributions = {name: optuna.distributions.FloatDistribution(lo, hi) for name, (lo, hi) in bounds.items()}
    for number in range(max(found) + 1):
        record = found.get(number)
        if record is None:
            study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))
            continue
        try:
            study.add_trial(optuna.trial.create_trial(
                state=TrialState[record["state"]], params=record["params"], distributions=distributions,
                values=record["values"], user_attrs=record["user_attrs"],
            ))  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise SAFRError(f"trial record {number} in {records} does not fit this search space: {exc}") from exc
    return len(found)
