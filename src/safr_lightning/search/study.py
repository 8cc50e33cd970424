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
import os
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
RUN_DIR, OVERRIDES, RESUME_FROM, REASON = "run_dir", "overrides", "resume_from", "reason"


def storage_url(sweep_dir: Path, storage: str | None = None) -> str:
    """``storage`` if given, else the sweep folder's SQLite file (what ``optuna-dashboard`` opens)."""
    return storage or f"sqlite:///{(sweep_dir / STUDY_DB).resolve()}"


@dataclass(frozen=True)
class Objective:
    """``val/acc`` or ``val/<per-k metric>@<k>`` of results.json's ``val.final`` (never a test number)."""

    name: str

    def read(self, results: dict[str, Any]) -> float:
        final = (results.get("val") or {}).get("final")
        if not final:
            raise KeyError("results.json has no val.final (srs.final_val=false?)")
        metric = self.name.removeprefix("val/")
        if "@" not in metric:
            value = final[metric]
        else:
            name, k = metric.split("@", 1)
            value = final[name][str(int(float(k))) if float(k).is_integer() else k]
        return float(value)


def parse_objectives(names: Sequence[str]) -> list[Objective]:
    if len(names) < 2:
        raise SAFRError(f"invalid config: hydra.sweeper.objectives={list(names)}: a Pareto search needs 2 or more")
    for name in names:
        if not name.startswith("val/"):
            raise SAFRError(
                f"invalid config: hydra.sweeper.objectives has {name!r}: objectives are validation metrics "
                "(val/acc, val/srs@30, ...); a search never reads a test number"
            )
    return [Objective(name) for name in names]


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


def open_study(name: str, url: str, directions: Sequence[str]) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=url, directions=list(directions), load_if_exists=True)
    if [d.name.lower() for d in study.directions] != [d.lower() for d in directions]:
        raise SAFRError(
            f"study {name!r} in {url} optimises {[d.name.lower() for d in study.directions]}, not {list(directions)}: "
            "a different study_name (hydra.sweeper.study_name) or sweep dir"
        )
    return study


def requeue_interrupted(study: optuna.Study) -> list[int]:
    """Trials left RUNNING by a launch that died: mark them failed (interrupted) and ask their point again."""
    requeued = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)  # no REASON attr: interrupted, not counted
        attrs = {RESUME_FROM: trial.user_attrs.get(RUN_DIR, "")}
        study.enqueue_trial(trial.params, user_attrs=attrs, skip_if_exists=False)
        requeued.append(trial.number)
    return requeued


def counted(trial: FrozenTrial) -> bool:
    """Does the trial use up the budget: finished, or failed by itself (a REASON; not killed with its launch)?"""
    return trial.state == TrialState.COMPLETE or (trial.state == TrialState.FAIL and REASON in trial.user_attrs)


def finished_count(study: optuna.Study) -> int:
    return sum(counted(t) for t in study.get_trials(deepcopy=False))


def read_results(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / "results.json").read_text())
    except (OSError, ValueError):
        return None


def trial_values(run_dir: Path, objectives: Sequence[Objective]) -> tuple[list[float] | None, str]:
    """The objectives of the run in ``run_dir``, or (None, why not)."""
    results = read_results(run_dir)
    if results is None:
        return None, f"no readable results.json in {run_dir}"
    if results.get("status") != "ok":
        return None, str(results.get("error") or f"status {results.get('status')}")
    try:
        values = [objective.read(results) for objective in objectives]
    except (KeyError, TypeError, ValueError) as exc:
        return None, f"results.json lacks an objective ({exc})"
    if not all(math.isfinite(v) for v in values):
        return None, f"non-finite objective {values}"
    return values, ""


def resume_checkpoint(run_dir: str) -> str | None:
    """The interrupted trial's last.ckpt, to continue from (None: start afresh)."""
    path = Path(run_dir) / "checkpoints" / "last.ckpt" if run_dir else None
    return str(path) if path is not None and path.is_file() and os.path.getsize(path) > 0 else None


# -- committed records: a study that outlives its sweep folder ---------------------------------------

TRIAL_RECORD = "trial_{:04d}.json"


def save_trial_record(records: Path, trial: FrozenTrial | Any, state: TrialState, values: Sequence[float] | None,
                      results: dict[str, Any] | None) -> Path:  # fmt: skip
    """One finished trial (complete, or failed by itself) as a small json file, committable."""
    from safr_lightning.files import write_text_atomic
    from safr_lightning.sweep.export import compact

    attrs = {k: v for k, v in trial.user_attrs.items() if k not in (RUN_DIR, RESUME_FROM)}
    attrs[OVERRIDES] = [o for o in attrs.get(OVERRIDES, []) if not o.startswith("ckpt_path=")]
    record = {
        "number": trial.number, "state": state.name, "params": dict(trial.params),
        "values": list(values) if values is not None else None, "user_attrs": attrs,
        "results": compact(results) if results is not None else None,
    }  # fmt: skip
    return write_text_atomic(records / TRIAL_RECORD.format(trial.number), json.dumps(record, indent=1) + "\n")


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
    """
    found = read_trial_records(records) if records.is_dir() else {}
    if not found or study.get_trials(deepcopy=False):
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
        except ValueError as exc:
            raise SAFRError(f"trial record {number} in {records} does not fit this search space: {exc}") from exc
    return len(found)
