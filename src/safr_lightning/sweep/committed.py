"""Long experiments that grow job by job across sessions: one committed record per finished job.

No machine keeps a run directory from one session to the next, and the paper's IMDB rows and its
paper-mode Table 6 are many CPU hours. A *plan* names every job of one table (dataset, row, seed,
fidelity); each finished job's compact ``results.json`` is written at once to
``docs/results/<plan>/<job>.json`` (commit it), and the table (``docs/results/<plan>.{json,md,csv}``)
is rendered from whatever records exist: a partial table says n per row. A later session runs only
the jobs without a record::

    python -m safr_lightning.sweep.committed imdb_exact --list          # done / remaining, CPU hours
    python -m safr_lightning.sweep.committed imdb_exact --missing       # run what has no record
    python -m safr_lightning.sweep.committed imdb_exact --import DIR    # records of runs made elsewhere

Each job is an ordinary single run (``python -m safr_lightning.train ...``) in a scratch folder
(``--scratch``, default ``multirun/<plan>/``); a job interrupted in this session continues from its
``last.ckpt``. ``--jobs N`` runs N jobs at once with ``2 // N`` (at least 1) torch threads each, so
that processes × threads stays within 2 cores; every record says its machine and thread count.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safr_lightning.cli import run_main
from safr_lightning.errors import SAFRError
from safr_lightning.fidelity import mode_of
from safr_lightning.files import write_text_atomic
from safr_lightning.results import RESULTS_FILE, read_record
from safr_lightning.sweep.children import run_side_by_side
from safr_lightning.sweep.export import build_export, compact, fill_readme, runs_summary, write_export
from safr_lightning.sweep.paper_tables import TABLE6_ROWS

RESULTS_DIR = Path("docs/results")
TABLE1_ROWS = {
    "sst2": ("baseline", "imp0_inter0", "imp0.1_inter0.1"),
    "imdb": ("baseline", "imp0_inter0", "imp0.1_inter1"),
}
# conf/row/<name>.yaml: (model, λ_imp, λ_inter), in Table 6's order.
ROWS: dict[str, tuple[str, float, float]] = {
    "baseline": ("baseline", 0.0, 0.0),
    **{f"imp{imp:g}_inter{inter:g}": ("safr", imp, inter) for model, imp, inter in TABLE6_ROWS if model == "safr"},
}


@dataclass(frozen=True)
class Job:
    dataset: str
    row: str
    seed: int
    fidelity: str

    @property
    def key(self) -> str:
        return f"{self.dataset}_{self.row}_s{self.seed}"

    def overrides(self) -> list[str]:
        return [f"dataset={self.dataset}", f"+row={self.row}", f"seed={self.seed}", f"fidelity={self.fidelity}"]

    def matches(self, results: dict[str, Any]) -> bool:
        """Did ``results`` come from this job (dataset, model, λ, seed, fidelity preset, untouched)?"""
        model, imp, inter = ROWS[self.row]
        lam = results.get("lambda") or {}
        return (
            results.get("dataset") == self.dataset
            and results.get("model") == model
            and float(lam.get("imp", -1)) == imp
            and float(lam.get("inter", -1)) == inter
            and int(results.get("seed", -1)) == self.seed
            and mode_of(results) == self.fidelity
        )


@dataclass(frozen=True)
class Plan:
    name: str
    title: str
    jobs: tuple[Job, ...]
    # Estimated CPU hours per job on this project's 2-core machines (1 thread, two jobs at once).
    hours_per_job: float

    def record_dir(self, root: Path = RESULTS_DIR) -> Path:
        return root / self.name


def _plan(name: str, title: str, dataset: str, rows: Sequence[str], fidelity: str, hours: float) -> Plan:
    # Seed-major: every row gets a seed before any row gets a second one.
    jobs = tuple(Job(dataset, row, seed, fidelity) for seed in (0, 1, 2) for row in rows)
    return Plan(name, title, jobs, hours)


PLANS = {
    plan.name: plan
    for plan in (
        _plan("imdb_exact", "IMDB in exact mode, Table 1's rows", "imdb", TABLE1_ROWS["imdb"], "exact", 1.2),
        _plan(
            "imdb_paper_mode",
            "IMDB in paper mode (fidelity=paper), Table 1's rows",
            "imdb",
            TABLE1_ROWS["imdb"],
            "paper",
            4.0,
        ),
        _plan("sst2_table6_paper", "SST-2 in paper mode, the whole of Table 6", "sst2", tuple(ROWS), "paper", 0.4),
    )
}


def records(plan: Plan, root: Path = RESULTS_DIR) -> dict[str, dict[str, Any]]:
    """The committed records of ``plan``'s jobs, by job key."""
    found = {}
    for job in plan.jobs:
        path = plan.record_dir(root) / f"{job.key}.json"
        if path.is_file():
            found[job.key] = json.loads(path.read_text())
    return found


def missing(plan: Plan, root: Path = RESULTS_DIR) -> list[Job]:
    done = records(plan, root)
    return [job for job in plan.jobs if job.key not in done]


def save_record(plan: Plan, job: Job, run_dir: Path, root: Path = RESULTS_DIR) -> Path:
    """Write ``job``'s record from its finished run dir (refused unless the run is that job, ok)."""
    record = read_record(run_dir)
    if record is None or record.status != "ok":
        raise SAFRError(f"{run_dir}: no finished run (results.json status {record.status if record else 'missing'})")
    results = dict(record.data)
    if not job.matches(results):
        raise SAFRError(f"{run_dir} holds another configuration than job {job.key}")
    entry = {"source": f"{plan.name}/{job.key}/{RESULTS_FILE}", "overrides": job.overrides(),
             "results": compact(results)}  # fmt: skip
    return write_text_atomic(plan.record_dir(root) / f"{job.key}.json", json.dumps(entry, indent=1) + "\n")


def render(plan: Plan, root: Path = RESULTS_DIR, readme: Path | None = None) -> list[Path]:
    """The plan's table from its records (partial while jobs remain), and the README's block."""
    done = records(plan, root)
    if not done:
        return []
    runs = runs_summary([r["results"] for r in done.values()])
    threads, precisions = runs["threads"], runs["precisions"]
    remaining = len(plan.jobs) - len(done)
    note = f"{len(done)} of {len(plan.jobs)} jobs finished" + (
        f"; {remaining} still to run (`python -m safr_lightning.sweep.committed {plan.name} --missing`)"
        if remaining else ""
    )  # fmt: skip
    note += f"; torch threads per job: {', '.join(map(str, threads))}" if threads else ""
    note += f"; precision: {', '.join(precisions)}." if precisions else "."
    command = f"python -m safr_lightning.sweep.committed {plan.name} --missing  # each job: python -m " \
              f"safr_lightning.train dataset=... +row=... seed=... fidelity=... logger=csv"  # fmt: skip
    export = build_export(plan.name, "ablation", [done[j.key] for j in plan.jobs if j.key in done],
                          title=plan.title, command=command, note=note)  # fmt: skip
    written = write_export(export, root)
    if readme is not None and readme.is_file():
        text = readme.read_text()
        filled = fill_remaining(fill_readme(text, root) if f"<!-- results:{plan.name} -->" in text else text, root)
        if filled != text:
            written.append(write_text_atomic(readme, filled))
    return written


REMAINING_BLOCK = re.compile(r"(<!-- committed:remaining -->\n)(.*?)(<!-- /committed:remaining -->)", re.S)


def hours_per_job(plan: Plan, root: Path = RESULTS_DIR) -> tuple[float, str]:
    """CPU hours a remaining job will take: the mean wall time of the 1-thread records, else the estimate."""
    walls = [
        (timing.get("fit_s", 0.0) + timing.get("test_s", 0.0)) / 3600
        for record in records(plan, root).values()
        if (record["results"].get("machine") or {}).get("threads") == 1
        and (timing := record["results"].get("timing") or {}).get("fit_s")
    ]
    if walls:
        return sum(walls) / len(walls), f"the mean of {len(walls)} record{'s' * (len(walls) > 1)} at 1 torch thread"
    return plan.hours_per_job, "estimated, at 1 torch thread"


def remaining_markdown(root: Path = RESULTS_DIR) -> str:
    """One line per plan: its records, the jobs still to run and their CPU hours (the README's block)."""
    lines = []
    for plan in PLANS.values():
        todo = missing(plan, root)
        done = len(plan.jobs) - len(todo)
        line = f"- `{plan.name}`: {done} of {len(plan.jobs)} jobs have a record"
        if todo:
            hours, why = hours_per_job(plan, root)
            line += (f"; {len(todo)} still to run, about {len(todo) * hours:.1f} CPU hours ({hours:.2f} h a "
                     f"job, {why}); next: `{todo[0].key}`")  # fmt: skip
        lines.append(line + ".")
    return "\n".join(lines) + "\n"


def fill_remaining(readme: str, root: Path = RESULTS_DIR) -> str:
    """``readme`` with its ``committed:remaining`` block (if any) rendered from the records under ``root``."""
    return REMAINING_BLOCK.sub(lambda m: m.group(1) + remaining_markdown(root) + m.group(3), readme)


def import_runs(plan: Plan, dirs: Sequence[Path], root: Path = RESULTS_DIR) -> list[Path]:
    """Records of finished runs under ``dirs`` (a sweep made by hand, another machine) that are plan jobs."""
    written = []
    for base in dirs:
        for path in sorted(base.rglob(RESULTS_FILE)):
            record = read_record(path.parent)
            if record is None or record.status != "ok":
                continue
            job = next((j for j in plan.jobs if j.matches(dict(record.data))), None)
            if job is not None and not (plan.record_dir(root) / f"{job.key}.json").is_file():
                written.append(save_record(plan, job, path.parent, root))
    return written


def _command(job: Job, scratch: Path, extra: Sequence[str]) -> list[str]:
    run_dir = (scratch / job.key).resolve()
    where = f"ckpt_path={run_dir}" if (run_dir / "checkpoints" / "last.ckpt").is_file() else f"hydra.run.dir={run_dir}"
    return [sys.executable, "-m", "safr_lightning.train", *job.overrides(), "logger=csv",
            "trainer.enable_progress_bar=false", *extra, where]  # fmt: skip


def run_missing(
    plan: Plan, scratch: Path, jobs: int, extra: Sequence[str], root: Path = RESULTS_DIR,
    readme: Path | None = None, limit: int | None = None, threads: int | None = None,
) -> list[str]:  # fmt: skip
    """Run the jobs without a record, ``jobs`` at a time; write each record and the table as it finishes.

    ``threads`` (torch threads per job) defaults to ``2 // jobs``: one 1-thread job leaves a core free.
    An interrupted call stops its running jobs (``sweep/children.py``); the next one resumes them
    from their ``last.ckpt``.
    """
    todo = missing(plan, root)[:limit]
    threads = threads or max(1, 2 // max(1, jobs))
    started: dict[str, float] = {}

    def command_of(job: Job) -> tuple[list[str], dict[str, str]]:
        started[job.key] = time.perf_counter()
        return _command(job, scratch, extra), {"OMP_NUM_THREADS": str(threads)}

    def finish(job: Job, done: subprocess.CompletedProcess) -> str:
        took = (time.perf_counter() - started[job.key]) / 3600
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            line = f"{job.key}: failed (exit {done.returncode}: {last}); {shlex.join(done.args)}"
        else:
            try:
                path = save_record(plan, job, (scratch / job.key).resolve(), root)
                line = f"{job.key}: ok in {took:.2f} h -> {path}"
            except SAFRError as exc:  # one job's odd folder must not stop the others
                line = f"{job.key}: failed ({exc})"
        print(line, flush=True)
        render(plan, root, readme)
        return line

    return [line for line in run_side_by_side(todo, jobs, command_of, finish) if line is not None]


def status_lines(plan: Plan, root: Path = RESULTS_DIR) -> list[str]:
    done = records(plan, root)
    todo = missing(plan, root)
    hours, why = hours_per_job(plan, root)
    lines = [f"{plan.name}: {len(done)} of {len(plan.jobs)} jobs have a record; {len(todo)} remaining, about "
             f"{len(todo) * hours:.1f} CPU hours at {hours:.2f} h per job ({why})"]  # fmt: skip
    lines += [f"  remaining: {job.key} ({' '.join(job.overrides())})" for job in todo]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m safr_lightning.sweep.committed", description=__doc__.split("\n")[0]
    )
    parser.add_argument("plan", choices=sorted(PLANS))
    parser.add_argument("--list", action="store_true", help="what has a record, what remains")
    parser.add_argument("--missing", action="store_true", help="run the jobs without a record")
    parser.add_argument("--import", dest="imports", nargs="*", type=Path, default=[], help="runs made elsewhere")
    parser.add_argument("--jobs", type=int, default=2, help="jobs at once (torch threads: 2 // jobs)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per job (default 2 // jobs)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many jobs")
    parser.add_argument("--scratch", type=Path, default=None, help="where the run dirs go (multirun/<plan>)")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    parser.add_argument("overrides", nargs="*", help="extra train overrides for every job (e.g. trainer=gpu)")
    args = parser.parse_args(argv)
    if (args.threads is not None and args.threads < 1) or args.jobs < 1:
        parser.error("--jobs and --threads must be at least 1")
    plan = PLANS[args.plan]

    def body() -> int:
        for path in import_runs(plan, args.imports, args.results):
            print(f"imported {path}")
        failed = []
        if args.missing:
            scratch = args.scratch or Path("multirun") / plan.name
            lines = run_missing(plan, scratch, args.jobs, args.overrides, args.results, args.readme, args.limit,
                                args.threads)  # fmt: skip
            failed = [line for line in lines if ": failed" in line]
        if not args.list:  # --list only reads: the tables and README change when records do
            for path in render(plan, args.results, args.readme):
                print(f"wrote {path}")
        print("\n".join(status_lines(plan, args.results)))
        return 1 if failed else 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
