"""hparams_search=pareto end to end: a study that is killed and continued, and what it optimises."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from safr_lightning.errors import SAFRError
from safr_lightning.search.report import front_of, load_trials
from safr_lightning.search.study import REASON, RUN_DIR, Objective, parse_objectives, trial_values
from tests.cli_runs import run_train, start_train

STUDY = [
    "-m",
    "hparams_search=pareto",
    "dataset=synthetic",
    "debug=tiny",
    "logger=none",
    "callbacks.figures.enabled=false",
    "dataset.synthetic.train_size=128",
    "dataset.synthetic.val_size=64",
    "dataset.synthetic.test_size=64",
    "trainer.max_epochs=1",
    "hydra.sweeper.n_startup_trials=2",
]


def trials_of(sweep_dir: Path) -> list[optuna.trial.FrozenTrial]:
    url = f"sqlite:///{sweep_dir / 'study.db'}"
    try:
        return optuna.load_study(study_name="pareto_synthetic_exact", storage=url).get_trials(deepcopy=False)
    except Exception:  # not created yet, or locked for a moment
        return []


def test_a_killed_study_continues_to_n_trials_with_validation_objectives(tmp_path: Path) -> None:
    records = tmp_path / "records"
    args = [*STUDY, f"paths.multirun_dir={tmp_path}", f"hydra.sweeper.records={records}", "hydra.sweeper.n_trials=4"]
    sweep_dir = tmp_path / "search" / "pareto_synthetic_exact"
    process = start_train(*args)
    deadline = time.monotonic() + 240
    try:  # kill -9 the launch once 2 trials are done and a third has been launched
        while time.monotonic() < deadline and process.poll() is None:
            trials = trials_of(sweep_dir)
            running = [t for t in trials if t.state == TrialState.RUNNING and RUN_DIR in t.user_attrs]
            if sum(t.state == TrialState.COMPLETE for t in trials) >= 2 and running:
                break
            time.sleep(0.2)
        assert process.poll() is None, f"the study ended before it could be killed: {process.stderr.read()}"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    killed = [t for t in trials_of(sweep_dir) if t.state == TrialState.RUNNING]
    assert len(killed) == 1 and sum(t.state == TrialState.COMPLETE for t in trials_of(sweep_dir)) == 2

    done = run_train(*args, timeout=300)  # the same command continues the study
    assert done.returncode == 0, done.stderr[-2000:]
    trials = trials_of(sweep_dir)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 4
    interrupted = next(t for t in trials if t.number == killed[0].number)
    assert interrupted.state == TrialState.FAIL and REASON not in interrupted.user_attrs  # not counted
    assert any(t.params == killed[0].params for t in complete)  # its point ran again
    assert len({t.user_attrs[RUN_DIR] for t in trials}) == len(trials)  # one folder per trial
    for trial in complete:
        results = json.loads((Path(trial.user_attrs[RUN_DIR]) / "results.json").read_text())
        final = results["val"]["final"]
        assert trial.values == pytest.approx([final["acc"], final["srs"]["30"]])  # validation, whole split
        assert results["lambda"] == {"imp": trial.user_attrs["lambda.imp"], "inter": trial.user_attrs["lambda.inter"]}
        assert final["n"] == 64 and results["test"]["n"] == 64
    # The report reads the same study: the front is the non-dominated complete trials.
    _, objectives, loaded = load_trials(sweep_dir)
    assert objectives == ["val/acc", "val/srs@30"]
    front = {t.number for t in front_of(loaded)}
    values = {t.number: t.values for t in complete}
    for number, v in values.items():
        beaten = any(w[0] >= v[0] and w[1] >= v[1] and w != v for w in values.values())
        assert (number in front) == (not beaten)
    # A finished study relaunched runs nothing more; one with another configuration is refused.
    again = run_train(*args, timeout=300)
    assert again.returncode == 0 and len(trials_of(sweep_dir)) == len(trials)
    other = run_train(*args, "optim.lr=0.002", timeout=300)
    assert other.returncode != 0 and "was started with overrides" in other.stderr and "Traceback" not in other.stderr

    # A new machine: the sweep folder is gone, the committed records are left; one more trial.
    assert sorted(p.name for p in records.glob("trial_*.json")) == [f"trial_{t.number:04d}.json" for t in complete]
    shutil.rmtree(sweep_dir)
    more = run_train(*args[:-1], "hydra.sweeper.n_trials=5", timeout=300)
    assert more.returncode == 0, more.stderr[-2000:]
    after = trials_of(sweep_dir)
    assert len(after) == len(trials) + 1 and after[-1].state == TrialState.COMPLETE
    for old, new in zip(trials, after, strict=False):  # numbers, points and values kept
        assert (new.number, new.state == TrialState.COMPLETE) == (old.number, old.state == TrialState.COMPLETE)
        if old.state == TrialState.COMPLETE:
            assert (new.params, new.values) == (old.params, old.values)
    report_dir = tmp_path / "report"
    shown = subprocess.run([sys.executable, "-m", "safr_lightning.search", str(sweep_dir), "--name", "r",
                            "--results", str(report_dir)], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    report = json.loads((report_dir / "r.json").read_text())
    assert all(t["test_acc_seed"] is not None for t in report["trials"] if t["state"] == "COMPLETE")
    assert {p["trial"] for p in report["front"]} <= {t.number for t in after if t.state == TrialState.COMPLETE}


def test_two_launches_of_one_study_do_not_run_at_once(tmp_path: Path) -> None:
    from safr_lightning.search.study import study_lock

    with study_lock(tmp_path), pytest.raises(SAFRError, match="another launch is running this study"):
        with study_lock(tmp_path):
            pass


def test_objectives_are_validation_numbers_only() -> None:
    with pytest.raises(SAFRError, match="never reads a test number"):
        parse_objectives(["val/acc", "test/srs@30"])
    with pytest.raises(SAFRError, match="2 or more"):
        parse_objectives(["val/acc"])
    results = {
        "val": {"acc": 0.9, "final": {"acc": 0.8, "srs": {"30": 12.5}}},
        "test": {"acc": 0.1, "srs": {"30": 1.0}},
    }
    acc, srs = parse_objectives(["val/acc", "val/srs@30"])
    assert (acc.read(results), srs.read(results)) == (0.8, 12.5)  # the final (tested checkpoint's) block
    with pytest.raises(KeyError):
        Objective("val/acc").read({"val": {"acc": 0.9}})


@pytest.mark.parametrize(
    "extra, message",
    [
        (["lambda.imp=0.1"], "the search chooses these"),
        (["seed=0,1"], "takes one value per key"),
        (["hydra.sweeper.sampler=cmaes"], "expected one of tpe, nsga2, random"),
        (["hydra.sweeper.objectives=[val/acc,test/acc]"], "never reads a test number"),
        (["hydra.sweeper.n_trials=0"], "n_trials >= 1"),
        (["srs.final_val=false"], "needs srs.enabled=true and srs.final_val=true"),
        (["hydra.sweeper.objectives=[val/acc,val/srs@25]"], "does not compute k = 25"),
        (["hydra.sweeper.objectives=[val/acc,val/srs@x]"], "k after @ must be in (0, 100)"),
        (["hydra.sweeper.storage=bogus://x"], "cannot open the study storage 'bogus://x'"),
    ],
)
def test_a_bad_search_is_one_line(tmp_path: Path, extra: list[str], message: str) -> None:
    done = run_train(*STUDY, f"paths.multirun_dir={tmp_path}", *extra, timeout=120)
    assert done.returncode != 0 and message in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Error in call to target" not in done.stderr, done.stderr  # the sweeper's own words, not Hydra's wrapper


def test_the_cli_module_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "safr_lightning.search", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 2 and "has no study.db" in done.stderr and "Traceback" not in done.stderr


def test_hparams_search_without_multirun_is_one_line(tmp_path: Path) -> None:
    done = run_train(*STUDY[1:], f"paths.output_dir={tmp_path}", timeout=120)
    assert done.returncode != 0 and "add -m" in done.stderr and "Traceback" not in done.stderr


def test_a_folder_holding_another_run_does_not_answer_for_the_trial(tmp_path: Path) -> None:
    """A refused job leaves the folder's earlier run: its numbers must not become the trial's."""
    results = {"status": "ok", "lambda": {"imp": 0.1, "inter": 0.1},
               "val": {"final": {"acc": 0.8, "srs": {"30": 12.0}}}}  # fmt: skip
    (tmp_path / "results.json").write_text(json.dumps(results))
    objectives = parse_objectives(["val/acc", "val/srs@30"])
    assert trial_values(tmp_path, objectives, {"lambda.imp": 0.1, "lambda.inter": 0.1}) == ([0.8, 12.0], "")
    values, why = trial_values(tmp_path, objectives, {"lambda.imp": 0.2, "lambda.inter": 0.1})
    assert values is None and "holds a run with lambda.imp=0.1, not 0.2" in why


def test_records_of_another_study_or_configuration_are_refused(tmp_path: Path) -> None:
    from safr_lightning.search.study import check_identity, import_records

    identity = {"overrides": ["dataset=sst2"], "objectives": ["val/acc", "val/srs@30"], "space": {}}
    study = optuna.create_study(study_name="pareto_sst2_exact", directions=["maximize", "maximize"])
    check_identity(study, identity, "memory")
    record = {"study": "pareto_sst2_paper", "identity": identity, "number": 0, "state": "COMPLETE", "params": {},
              "values": [0.5, 1.0], "user_attrs": {}}  # fmt: skip
    (tmp_path / "trial_0000.json").write_text(json.dumps(record))
    with pytest.raises(SAFRError, match="belongs to study 'pareto_sst2_paper'"):
        import_records(study, tmp_path, {})
    other = {**identity, "overrides": ["dataset=sst2", "optim.lr=0.01"]}
    (tmp_path / "trial_0000.json").write_text(json.dumps({**record, "study": "pareto_sst2_exact", "identity": other}))
    with pytest.raises(SAFRError, match=r"another hydra\.sweeper\.records"):
        import_records(study, tmp_path, {})
    with pytest.raises(SAFRError, match="was started with overrides"):
        check_identity(study, other, "memory")
