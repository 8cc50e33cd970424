"""After a λ search: its Pareto front by validation, the front re-trained with seeds and tested, a table
and a figure against the paper's grid.

    python -m safr_lightning.search SWEEP_DIR                 # the trials, the front marked (by validation)
    python -m safr_lightning.search SWEEP_DIR --retest        # train + test each front point with seeds 0, 1, 2
    python -m safr_lightning.search SWEEP_DIR --name sst2_pareto_exact   # docs/results/<name>.{md,csv,json,png}

Re-tests are single runs in ``SWEEP_DIR/retest/<trial>_s<seed>``, ``--jobs`` at a time; one that
finished is not run again (a trial run with the same seed is reused), so ``--retest`` continues
where it stopped.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safr_lightning.cli import run_main
from safr_lightning.errors import SAFRError
from safr_lightning.files import write_text_atomic
from safr_lightning.results import value_at_k
from safr_lightning.search.front import dominates, pareto_front
from safr_lightning.search.study import (
    OVERRIDES,
    REASON,
    RUN_DIR,
    open_storage,
    read_json,
    read_results,
    read_trial_records,
    storage_url,
)
from safr_lightning.sweep.children import run_side_by_side, usable_cores
from safr_lightning.sweep.export import compact, runs_summary
from safr_lightning.sweep.table import Stat, mean_std

RETEST_DIR = "retest"
SEEDS = (0, 1, 2)
# Overrides of a trial that a re-test replaces or must not repeat.
DROPPED = ("hparams_search=", "ckpt_path=", "seed=", "hydra.")


def lambda_text(value: float | None) -> str:
    """A λ as the tables write it; "?" for a trial whose point is unknown (no params recorded)."""
    return "?" if value is None else f"{value:g}"


def lambda_label(imp: float | None, inter: float | None) -> str:
    return f"({lambda_text(imp)}, {lambda_text(inter)})"


@dataclass
class Trial:
    number: int
    state: str
    imp: float | None
    inter: float | None
    values: list[float] | None  # the study's objectives (validation)
    run_dir: str
    overrides: list[str]
    reason: str = ""
    recorded: dict[str, Any] | None = None  # the committed record's results.json (--records)
    tests: list[dict[str, Any]] = field(default_factory=list)  # re-test results.json, one per seed

    def results(self) -> dict[str, Any] | None:
        """The trial run's results.json: from its folder, else from its committed record."""
        return (read_results(Path(self.run_dir)) if self.run_dir else None) or self.recorded

    @property
    def label(self) -> str:
        return lambda_label(self.imp, self.inter)


def load_trials(
    sweep_dir: Path, storage: str | None = None, records: Path | None = None, study_name: str | None = None
) -> tuple[str, list[str], list[Trial]]:
    """The study in ``sweep_dir`` (``study_name``, needed only when the storage holds several): name,
    objective names, trials."""
    import optuna

    url = storage_url(sweep_dir, storage)
    if storage is None and not (sweep_dir / "study.db").is_file():
        raise SAFRError(f"{sweep_dir} has no study.db: not the sweep dir of hparams_search=pareto")
    store = open_storage(url)
    names = optuna.get_all_study_names(storage=store)
    if study_name is not None and study_name not in names:
        raise SAFRError(f"{url} has no study {study_name!r} (it holds: {', '.join(names) or 'none'})")
    if not names:
        raise SAFRError(f"{url} holds no study")
    if study_name is None and len(names) != 1:
        raise SAFRError(f"{url} holds {len(names)} studies ({', '.join(names)}); choose one with --study")
    study = optuna.load_study(study_name=study_name or names[0], storage=store)
    config = (sweep_dir / "multirun.yaml").read_text() if (sweep_dir / "multirun.yaml").is_file() else ""
    objectives = _objectives(config) or [f"objective {i}" for i in range(len(study.directions))]
    trials = [
        Trial(
            t.number,
            t.state.name,
            t.user_attrs.get("lambda.imp"),
            t.user_attrs.get("lambda.inter"),
            list(t.values) if t.values is not None else None,
            str(t.user_attrs.get(RUN_DIR, "")),
            list(t.user_attrs.get(OVERRIDES, [])),
            str(t.user_attrs.get(REASON, "")),
        )
        for t in study.get_trials(deepcopy=False)
    ]
    recorded = read_trial_records(records) if records is not None and records.is_dir() else {}
    for trial in trials:
        trial.recorded = (recorded.get(trial.number) or {}).get("results")
    return study.study_name, objectives, trials


def _records_of(sweep_dir: Path) -> Path | None:
    from omegaconf import OmegaConf

    try:
        records = OmegaConf.load(sweep_dir / "multirun.yaml").hydra.sweeper.get("records")
    except Exception:
        return None
    return Path(str(records)) if records else None


def _objectives(multirun_yaml: str) -> list[str]:
    from omegaconf import OmegaConf

    try:
        return [str(o) for o in OmegaConf.create(multirun_yaml).hydra.sweeper.objectives]
    except Exception:
        return []


def front_of(trials: Sequence[Trial]) -> list[Trial]:
    done = [t for t in trials if t.state == "COMPLETE" and t.values is not None]
    return [done[i] for i in pareto_front([t.values for t in done])]  # type: ignore[misc]


def retest_overrides(trial: Trial, seed: int, run_dir: Path) -> list[str]:
    kept = [o for o in trial.overrides if not o.startswith(DROPPED)]
    return [*kept, f"seed={seed}", "srs.final_val=true", "run_test=true", f"hydra.run.dir={run_dir}"]


def _tested(results: dict[str, Any] | None) -> dict[str, Any] | None:
    return results if results is not None and results.get("status") == "ok" and results.get("test") else None


RETEST_RECORD = "retest_{:04d}_s{}.json"


def retest_results(sweep_dir: Path, trial: Trial, seed: int, records: Path | None) -> dict[str, Any] | None:
    """Seed ``seed``'s tested run of ``trial``: the trial's own run when it used that seed, else the
    re-test's folder, else its committed record."""
    own = _tested(trial.results())
    if own is not None and own.get("seed") == seed:
        return own
    found = _tested(read_results(sweep_dir / RETEST_DIR / f"{trial.number}_s{seed}"))
    if found is None and records is not None:
        found = _tested(read_json(records / RETEST_RECORD.format(trial.number, seed)))
    return found


def run_retests(
    sweep_dir: Path, front: Sequence[Trial], seeds: Sequence[int], records: Path | None, jobs: int = 1,
    threads: int | None = None,
) -> list[str]:  # fmt: skip
    """Train and test every (front trial, seed) without a tested run, ``jobs`` at a time.

    With ``jobs`` > 1 each run gets ``threads`` torch threads (default: the usable cores divided by
    ``jobs``), so that processes × threads stays within the machine; one job keeps the caller's
    setting unless ``threads`` is given. Each finished re-test is recorded at once (``records``);
    an interrupted call stops its runs (``sweep/children.py``), and the next one resumes them.
    """
    seeds = list(dict.fromkeys(seeds))
    todo = [(t, seed) for t in front for seed in seeds if retest_results(sweep_dir, t, seed, records) is None]
    if jobs > 1 and threads is None:
        threads = max(1, usable_cores() // jobs)
    extra = {"OMP_NUM_THREADS": str(threads)} if threads else {}

    def command_of(pair: tuple[Trial, int]) -> tuple[list[str], dict[str, str]]:
        trial, seed = pair
        run_dir = sweep_dir / RETEST_DIR / f"{trial.number}_s{seed}"
        command = [sys.executable, "-m", "safr_lightning.train", *retest_overrides(trial, seed, run_dir)]
        if (run_dir / "checkpoints" / "last.ckpt").is_file():
            command.append(f"ckpt_path={run_dir}")
        return command, extra

    def finish(pair: tuple[Trial, int], done: subprocess.CompletedProcess) -> str:
        trial, seed = pair
        run_dir = sweep_dir / RETEST_DIR / f"{trial.number}_s{seed}"
        last = (done.stderr.strip().splitlines() or [""])[-1]
        tested = _tested(read_results(run_dir)) if done.returncode == 0 else None
        if tested is not None and records is not None:
            path = records / RETEST_RECORD.format(trial.number, seed)
            write_text_atomic(path, json.dumps(compact(tested), indent=1) + "\n")
        line = f"trial {trial.number} seed {seed}: " + ("ok" if done.returncode == 0 else f"failed ({last})")
        print(line, flush=True)
        return line

    return [line for line in run_side_by_side(todo, jobs, command_of, finish) if line is not None]


def _test_point(results: Sequence[dict[str, Any]], k: float) -> tuple[Stat, Stat]:
    acc = mean_std(100.0 * r["test"]["acc"] for r in results)
    srs = mean_std(value_at_k(r["test"].get("srs"), k) for r in results)
    return acc, srs


@dataclass
class GridRow:
    label: str
    model: str
    imp: float
    inter: float
    acc: Stat
    srs: Stat


def grid_rows(path: Path, k: float) -> list[GridRow]:
    """Table 6's rows (mean over seeds) from a committed table's json (sweep.export)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SAFRError(f"--grid {path}: not a readable table json ({exc})") from exc
    groups: dict[tuple[str, float, float], list[dict[str, Any]]] = {}
    for record in data.get("records", []):
        r = record["results"]
        if r.get("status") == "ok" and r.get("test"):
            groups.setdefault((r["model"], float(r["lambda"]["imp"]), float(r["lambda"]["inter"])), []).append(r)
    rows = []
    for (model, imp, inter), results in groups.items():
        acc, srs = _test_point(results, k)
        label = "Baseline" if model == "baseline" else f"({imp:g}, {inter:g})"
        rows.append(GridRow(label, model, imp, inter, acc, srs))
    return rows


def _fmt(stat: Stat) -> str:
    if stat.mean is None:
        return "–"
    return f"{stat.mean:.2f}" + (f" ± {stat.std:.2f}" if stat.std is not None else "")


def build_report(
    name: str,
    sweep_dir: Path,
    objectives: list[str],
    trials: list[Trial],
    front: list[Trial],
    grid: list[GridRow],
    k: float,
    command: str,
) -> dict[str, Any]:
    points = []
    for trial in sorted(front, key=lambda t: t.values[0] if t.values else 0.0, reverse=True):
        acc, srs = _test_point(trial.tests, k) if trial.tests else (Stat(None, None, 0), Stat(None, None, 0))
        points.append(
            {
                "trial": trial.number,
                "lambda": {"imp": trial.imp, "inter": trial.inter},
                "val": dict(zip(objectives, trial.values or [], strict=False)),
                "test_acc": acc._asdict(),
                f"test_srs@{k:g}": srs._asdict(),
                "seeds": len(trial.tests),
            }
        )
    beats = []
    for p in points:
        acc, srs = p["test_acc"]["mean"], p[f"test_srs@{k:g}"]["mean"]
        if acc is None or srs is None:
            continue
        dominated = [
            g.label
            for g in grid
            if g.acc.mean is not None and g.srs.mean is not None and dominates((acc, srs), (g.acc.mean, g.srs.mean))
        ]
        beats.append({"trial": p["trial"], "dominates": dominated, "beats_every_row": len(dominated) == len(grid) > 0})
    return {
        "name": name,
        "kind": "pareto",
        "k": k,
        "command": command,
        "sweep_dir": str(sweep_dir),
        "runs": runs_summary([r for t in trials if (r := t.results())] + [r for t in front for r in t.tests]),
        "objectives": objectives,
        "trials": [
            {
                "trial": t.number,
                "state": t.state,
                "lambda": {"imp": t.imp, "inter": t.inter},
                "val": dict(zip(objectives, t.values or [], strict=False)),
                "reason": t.reason,
                "test_acc_seed": _single(t, "acc", k),
                f"test_srs@{k:g}_seed": _single(t, "srs", k),
            }
            for t in trials
        ],
        "front": points,
        "grid": [
            {
                "label": g.label,
                "model": g.model,
                "lambda": {"imp": g.imp, "inter": g.inter},
                "test_acc": g.acc._asdict(),
                f"test_srs@{k:g}": g.srs._asdict(),
            }
            for g in grid
        ],
        "beats": beats,
    }


def _single(trial: Trial, what: str, k: float) -> float | None:
    """The trial run's own test number (one seed), for the figure's grey dots; never an objective."""
    test = (trial.results() or {}).get("test") or {}
    if what == "acc":
        return 100.0 * test["acc"] if test.get("acc") is not None else None
    return value_at_k(test.get("srs"), k) if test.get("srs") else None


def render_markdown(report: dict[str, Any]) -> str:
    k = report["k"]
    key = f"test_srs@{k:g}"
    lines = [f"# {report['name']}: the accuracy–SRS@{k:g} front of λ", "", "```bash", report["command"], "```", ""]
    complete = [t for t in report["trials"] if t["state"] == "COMPLETE"]
    lines.append(
        f"{len(report['trials'])} trials ({len(complete)} complete); objectives (maximised, validation): "
        f"{', '.join(report['objectives'])}. The front below is chosen by validation, then each point is "
        f"re-trained with seeds {', '.join(map(str, SEEDS))} and tested (mean ± sample std)."
    )
    runs = report.get("runs") or {}
    if runs.get("machines"):
        lines += ["", f"Machine: {'; '.join(runs['machines'])}."]
        lines[-1] += f" Torch threads per run: {', '.join(map(str, runs['threads'])) or 'not recorded'}"
        lines[-1] += f"; precision: {', '.join(runs['precisions']) or 'not recorded'}."
    lines += [
        "",
        f"| Trial | λ_imp | λ_inter | val ({', '.join(report['objectives'])}) | n | test acc | test SRS@{k:g} |",
        "|---:|---:|---:|---|---:|---:|---:|",
    ]
    for p in report["front"]:
        val = ", ".join(f"{v:.4f}" for v in p["val"].values())
        imp, inter = lambda_text(p["lambda"]["imp"]), lambda_text(p["lambda"]["inter"])
        lines.append(
            f"| {p['trial']} | {imp} | {inter} | {val} | {p['seeds']} | "
            f"{_fmt(Stat(**p['test_acc']))} | {_fmt(Stat(**p[key]))} |"
        )
    if report["grid"]:
        lines += [
            "",
            "The paper's grid (Table 6, same dataset and mode, committed):",
            "",
            f"| Row | test acc | test SRS@{k:g} |",
            "|---|---:|---:|",
        ]
        lines += [f"| {g['label']} | {_fmt(Stat(**g['test_acc']))} | {_fmt(Stat(**g[key]))} |" for g in report["grid"]]
        winners = [b["trial"] for b in report["beats"] if b["beats_every_row"]]
        lines += [
            "",
            "Does a front point beat every Table 6 row on both test accuracy and SRS (means)? "
            + (f"Yes: trial(s) {', '.join(map(str, winners))}." if winners else "No."),
        ]
        for b in report["beats"]:
            lines.append(
                f"- trial {b['trial']} dominates {len(b['dominates'])} of {len(report['grid'])} rows"
                + (f": {', '.join(b['dominates'])}" if b["dominates"] else "")
            )
    failed = [t for t in report["trials"] if t["state"] == "FAIL" and t["reason"]]
    if failed:
        lines += ["", "Failed trials: " + "; ".join(f"{t['trial']} ({t['reason']})" for t in failed)]
    return "\n".join(lines) + "\n"


def render_csv(report: dict[str, Any]) -> str:
    k = report["k"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "kind",
            "trial",
            "label",
            "lambda_imp",
            "lambda_inter",
            *report["objectives"],
            "n",
            "test_acc_mean",
            "test_acc_std",
            f"test_srs@{k:g}_mean",
            f"test_srs@{k:g}_std",
        ]
    )
    for p in report["front"]:
        acc, srs = p["test_acc"], p[f"test_srs@{k:g}"]
        writer.writerow(
            [
                "front",
                p["trial"],
                "",
                p["lambda"]["imp"],
                p["lambda"]["inter"],
                *p["val"].values(),
                p["seeds"],
                acc["mean"],
                acc["std"],
                srs["mean"],
                srs["std"],
            ]
        )
    for g in report["grid"]:
        acc, srs = g["test_acc"], g[f"test_srs@{k:g}"]
        writer.writerow(
            [
                "grid",
                "",
                g["label"],
                g["lambda"]["imp"],
                g["lambda"]["inter"],
                *([""] * len(report["objectives"])),
                acc["n"],
                acc["mean"],
                acc["std"],
                srs["mean"],
                srs["std"],
            ]
        )
    return out.getvalue()


def draw(report: dict[str, Any]):
    from safr_lightning.plots.pareto import Point, draw_pareto

    k = report["k"]
    key = f"test_srs@{k:g}"
    trials = [
        Point(str(t["trial"]), t[f"{key}_seed"], t["test_acc_seed"])
        for t in report["trials"]
        if t["test_acc_seed"] is not None and t[f"{key}_seed"] is not None
    ]
    front = [
        Point(
            lambda_label(p["lambda"]["imp"], p["lambda"]["inter"]),
            p[key]["mean"],
            p["test_acc"]["mean"],
            p[key]["std"],
            p["test_acc"]["std"],
        )
        for p in report["front"]
        if p["test_acc"]["mean"] is not None and p[key]["mean"] is not None
    ]
    grid = [
        Point(g["label"], g[key]["mean"], g["test_acc"]["mean"], g[key]["std"], g["test_acc"]["std"])
        for g in report["grid"]
        if g["label"] != "Baseline" and g["test_acc"]["mean"] is not None and g[key]["mean"] is not None
    ]
    base = next((g for g in report["grid"] if g["label"] == "Baseline"), None)
    shown = base is not None and None not in (base[key]["mean"], base["test_acc"]["mean"])
    baseline = Point("Baseline", base[key]["mean"], base["test_acc"]["mean"]) if shown else None
    return draw_pareto(trials, front, grid, baseline, report["name"], k)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m safr_lightning.search", description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--storage", default=None, help="the study's storage URL (default: SWEEP_DIR/study.db)")
    parser.add_argument("--study", default=None, help="the study's name, when the storage holds several")
    parser.add_argument("--retest", action="store_true", help="train and test each front point with --seeds")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--jobs", type=int, default=1, help="re-tests at once (threads each: cores // jobs)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per re-test")
    parser.add_argument("--name", default=None, help="write docs/results/<name>.{md,csv,json} and <name>.png")
    parser.add_argument("--results", type=Path, default=Path("docs/results"))
    parser.add_argument("--grid", type=Path, default=None, help="the committed Table 6 json to overlay")
    parser.add_argument("--k", type=float, default=30.0)
    parser.add_argument(
        "--records",
        type=Path,
        default=None,
        help="committed trial records (hydra.sweeper.records); re-tests are recorded there too",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1 or (args.threads is not None and args.threads < 1):
        parser.error("--jobs and --threads must be at least 1")

    def body() -> int:
        records = args.records or _records_of(args.sweep_dir)
        study, objectives, trials = load_trials(args.sweep_dir, args.storage, records, args.study)
        front = front_of(trials)
        on_front = {t.number for t in front}
        print(f"study {study}: {len(trials)} trials, {len(front)} on the validation front ({', '.join(objectives)})")
        for t in trials:
            val = ", ".join(f"{v:.4f}" for v in t.values) if t.values else t.reason or "-"
            lam = f"λ={lambda_label(t.imp, t.inter)}"
            print(f"{'*' if t.number in on_front else ' '} {t.number:4d} {t.state:8s} {lam:24s} {val}")
        failed = []
        if args.retest:
            lines = run_retests(args.sweep_dir, front, args.seeds, records, args.jobs, args.threads)
            failed = [line for line in lines if "failed" in line]
        if args.name:
            for trial in front:
                found = (retest_results(args.sweep_dir, trial, seed, records) for seed in args.seeds)
                trial.tests = [r for r in found if r is not None]
            grid = grid_rows(args.grid, args.k) if args.grid else []
            command = f"python -m safr_lightning.search {args.sweep_dir} --retest --name {args.name}" + "".join(
                f" --{flag} {value}"
                for flag, value in (("storage", args.storage), ("study", args.study), ("grid", args.grid))
                if value
            )
            report = build_report(args.name, args.sweep_dir, objectives, trials, front, grid, args.k, command)
            base = args.results / args.name
            write_text_atomic(base.with_suffix(".json"), json.dumps(report, indent=1) + "\n")
            write_text_atomic(base.with_suffix(".md"), render_markdown(report))
            write_text_atomic(base.with_suffix(".csv"), render_csv(report))
            from safr_lightning.plots.style import save_figure

            written = save_figure(draw(report), base, formats=("png",))
            print(f"wrote {base}.{{json,md,csv}} and {', '.join(map(str, written))}")
        return 1 if failed else 0

    return run_main(body)
