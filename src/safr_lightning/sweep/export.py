"""Committed results: ``docs/results/<name>.json`` and the ``.md`` / ``.csv`` tables rendered from it.

An export is one JSON file that holds every job's ``results.json`` (and, where asked, the
``evaluation_*.json`` files beside it), compacted (no absolute paths), with the command that produced
them, the machine and the torch version. Tables are *rendered* from that file, never typed: the
markdown and CSV files, and the README's result tables, which sit between
``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` markers and are rewritten by
``python -m safr_lightning.export --readme``. ``tests/sweep/test_export.py`` checks that README,
tables and JSON agree.

Three kinds of table:

- ``ablation``: Table 6 (one row per configuration, mean ± std over seeds, the paper beside it);
- ``decomposition``: one row per fidelity mode, and each switch's effect against the mode it was
  switched from (paired by seed);
- ``scorers``: SRS@k of each token ranking (capacity from results.json, the others from
  ``evaluation_<scorer>.json``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safr_lightning.cli import run_main
from safr_lightning.errors import SAFRError
from safr_lightning.fidelity import GROUPS, mode_of, short_label
from safr_lightning.files import write_text_atomic
from safr_lightning.results import RESULTS_FILE, load_record, machine_info, value_at_k
from safr_lightning.sweep.jobs import OK, Job, _assign_variants, collect_jobs
from safr_lightning.sweep.paper_tables import DATASET_TITLES, PAPER_K
from safr_lightning.sweep.table import (
    HEADERS,
    METRICS,
    RowKey,
    Stat,
    fmt_stat,
    mean_std,
    row_key,
    run_metrics,
    summarize,
)

KINDS = ("ablation", "decomposition", "scorers")
SCORER_COLUMNS = ("capacity", "vmask", "attention")
# Keys of results.json that hold where a run lived on the machine that ran it.
_LOCAL_KEYS = ("run_dir",)


# -- collecting ------------------------------------------------------------------------------------


def compact(results: dict[str, Any]) -> dict[str, Any]:
    """``results`` without machine-local paths: ``run_dir`` dropped, checkpoint paths made relative."""
    out = {k: v for k, v in results.items() if k not in _LOCAL_KEYS}
    if isinstance(out.get("checkpoint"), str):
        out["checkpoint"] = _relative(out["checkpoint"])
    resumed = out.get("resumed_from")
    if isinstance(resumed, dict) and isinstance(resumed.get("checkpoint"), str):
        out["resumed_from"] = {**resumed, "checkpoint": _relative(resumed["checkpoint"])}
    return out


def _relative(path: str) -> str:
    """``.../<job>/checkpoints/best.ckpt`` -> ``checkpoints/best.ckpt``; relative paths stay."""
    parts = Path(path).parts
    if not Path(path).is_absolute():
        return path
    return str(Path(*parts[parts.index("checkpoints") :])) if "checkpoints" in parts else Path(path).name


def collect_records(sweep_dirs: Sequence[Path], evaluations: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One record per finished job of every sweep (and per ``evaluations`` file found beside one).

    A record is ``{"source": "<sweep>/<job>/<file>", "overrides": [...], "results": {...}}``.
    """
    records = []
    for sweep_dir in sweep_dirs:
        for job in collect_jobs(sweep_dir):
            if job.dir is None or job.results is None or job.status != OK:
                continue
            source = f"{sweep_dir.name}/{job.dir.relative_to(sweep_dir).as_posix()}"
            records.append({"source": f"{source}/{RESULTS_FILE}", "overrides": list(job.overrides),
                            "results": compact(job.results)})  # fmt: skip
            for name in evaluations:
                path = job.dir / name
                if path.is_file():
                    records.append({"source": f"{source}/{name}", "overrides": list(job.overrides),
                                    "results": compact(dict(load_record(path).data))})  # fmt: skip
    return records


def build_export(
    name: str,
    kind: str,
    records: list[dict[str, Any]],
    *,
    title: str,
    command: str,
    k: float = PAPER_K,
    note: str = "",
) -> dict[str, Any]:
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}; allowed: {' | '.join(KINDS)}")
    if kind == "decomposition":
        records = switched_records(records)
    return {"name": name, "kind": kind, "title": title, "k": k, "command": command, "note": note,
            "machine": machine_info(), "records": records}  # fmt: skip


# -- rendering --------------------------------------------------------------------------------------


def _jobs(records: Sequence[dict[str, Any]]) -> list[Job]:
    jobs = [
        Job(None, tuple(r["overrides"]), None, r["results"], OK, "", r["results"].get("dataset"))
        for r in records
        if r["results"].get("status") == OK
    ]
    _assign_variants(jobs)
    return jobs


def _configuration(record: dict[str, Any]) -> tuple[Any, ...]:
    results = record["results"]
    lam = results.get("lambda") or {}
    return (results.get("dataset"), results.get("model"), lam.get("imp"), lam.get("inter"))


def switched_records(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of configurations that were run in more than one fidelity mode.

    A decomposition may read a whole sweep (exact Table 6) for its one shared row: the other rows'
    jobs have nothing to compare with and stay out of the export.
    """
    modes: dict[tuple[Any, ...], set[str]] = {}
    for record in records:
        modes.setdefault(_configuration(record), set()).add(mode_of(record["results"]))
    return [r for r in records if len(modes[_configuration(r)]) > 1]


def _is_run_record(record: dict[str, Any]) -> bool:
    return record["source"].endswith(RESULTS_FILE)


def _datasets(records: Sequence[dict[str, Any]]) -> list[str]:
    return sorted({str(r["results"]["dataset"]) for r in records if r["results"].get("dataset")})


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: Sequence[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _ablation(export: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    k = float(export["k"])
    jobs = _jobs([r for r in export["records"] if _is_run_record(r)])
    datasets = sorted({j.dataset for j in jobs if j.dataset})
    blocks, csv_rows = [], []
    for dataset in datasets:
        rows = summarize(jobs, dataset, k)
        title = DATASET_TITLES.get(dataset, dataset)
        header = [f"Model ({title}, k = {k:g})", "n"]
        for metric in METRICS:
            header += [HEADERS[metric], "*paper*"]
        lines = []
        for row in rows:
            cells = [row.key.label, str(row.n)]
            for metric in METRICS:
                cells += [fmt_stat(row.stats[metric], row.n), _num(getattr(row.paper, metric) if row.paper else None)]
            lines.append(cells)
            record = _csv_record(dataset, row.key, row.n, row.seeds, k, row.stats)
            csv_rows.append(record | {f"paper_{m}": getattr(row.paper, m) if row.paper else "" for m in METRICS})
        blocks.append(_table(header, lines, ["---", "---:"] + ["---:"] * 2 * len(METRICS)))
    return "\n\n".join(blocks), csv_rows


def _csv_record(
    dataset: str, key: RowKey, n: int, seeds: list[int], k: float, stats: dict[str, Stat]
) -> dict[str, Any]:
    """One CSV row: the configuration, then ``<stat>_mean`` / ``<stat>_std`` at full precision."""
    record: dict[str, Any] = {"dataset": dataset, "row": key.label, "model": key.model, "lambda_imp": key.imp,
                              "lambda_inter": key.inter, "fidelity": key.fidelity, "k": f"{k:g}", "n": n,
                              "seeds": " ".join(map(str, seeds))}  # fmt: skip
    for name, stat in stats.items():
        record[f"{name}_mean"] = "" if stat.mean is None else repr(stat.mean)
        record[f"{name}_std"] = "" if stat.std is None else repr(stat.std)
    return record


@dataclass
class _Group:
    key: RowKey
    by_seed: dict[int, dict[str, float | None]]

    def stat(self, metric: str) -> Stat:
        return mean_std(values[metric] for values in self.by_seed.values())


def _groups(records: Sequence[dict[str, Any]], k: float, dataset: str) -> list[_Group]:
    groups: dict[RowKey, _Group] = {}
    for job in _jobs(records):
        key = row_key(job)
        if key is None or job.dataset != dataset or job.results is None:
            continue
        group = groups.setdefault(key, _Group(key, {}))
        group.by_seed[int(job.results.get("seed", 0))] = run_metrics(job.results, k)
    return list(groups.values())


def base_mode(mode: str) -> str:
    """The preset a mode was switched from: ``paper, init=exact`` -> ``paper``."""
    return mode.split(",")[0].strip()


def paired_delta(row: _Group, base: _Group, metric: str) -> Stat:
    """``row − base`` per seed both have, as mean ± sample std over those seeds."""
    return mean_std(
        row.by_seed[s][metric] - base.by_seed[s][metric]  # type: ignore[operator]
        for s in sorted(set(row.by_seed) & set(base.by_seed))
        if row.by_seed[s][metric] is not None and base.by_seed[s][metric] is not None
    )


def _signed(stat: Stat) -> str:
    if stat.mean is None:
        return "–"
    text = f"{stat.mean:+.2f}"
    return text if stat.std is None else f"{text} ± {stat.std:.2f}"


def _decomposition(export: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    k = float(export["k"])
    records = export["records"]
    datasets = _datasets(records)
    blocks, csv_rows = [], []
    for dataset in datasets:
        groups = _groups(records, k, dataset)
        # Only configurations where a departure was switched: the others have nothing to compare.
        switched = {
            (g.key.model, g.key.imp, g.key.inter) for g in groups if g.key.fidelity != base_mode(g.key.fidelity)
        }
        groups = [g for g in groups if (g.key.model, g.key.imp, g.key.inter) in switched]
        by_mode = {(g.key.model, g.key.imp, g.key.inter, g.key.fidelity): g for g in groups}
        # Each preset first, then the switches away from it, in the order they were listed.
        order = sorted(groups, key=lambda g: (g.key.model, g.key.imp, g.key.inter,
                                              base_mode(g.key.fidelity) != "paper", "," in g.key.fidelity))  # fmt: skip
        header = ["Fidelity (switched from its preset)", "n"] + [f"{HEADERS[m]}" for m in METRICS]
        header += [f"Δ {HEADERS[m]}" for m in METRICS]
        lines = []
        for g in order:
            base = by_mode.get((g.key.model, g.key.imp, g.key.inter, base_mode(g.key.fidelity)))
            cells = [f"{_model_text(g.key)}: {short_label(g.key.fidelity)}", str(len(g.by_seed))]
            cells += [fmt_stat(g.stat(m), len(g.by_seed)) for m in METRICS]
            is_base = base is None or base is g
            deltas = {m: (Stat(None, None, 0) if is_base else paired_delta(g, base, m)) for m in METRICS}
            cells += ["" if is_base else _signed(deltas[m]) for m in METRICS]
            lines.append(cells)
            stats = {**{m: g.stat(m) for m in METRICS}, **{f"delta_{m}": deltas[m] for m in METRICS}}
            csv_rows.append(_csv_record(dataset, g.key, len(g.by_seed), sorted(g.by_seed), k, stats))
        blocks.append(_table(header, lines, ["---", "---:"] + ["---:"] * 2 * len(METRICS)))
    return "\n\n".join(blocks), csv_rows


def _model_text(key: RowKey) -> str:
    return RowKey(key.model, key.imp, key.inter).label


def _scorers(export: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    k = float(export["k"])
    records = export["records"]
    datasets = _datasets(records)
    blocks, csv_rows = [], []
    for dataset in datasets:
        # Rows are the runs' own configurations; each scorer's evaluation joins its run by source folder.
        runs = [r for r in records if _is_run_record(r) and r["results"].get("dataset") == dataset]
        rows = summarize(_jobs(runs), dataset, k)
        by_folder = {r["source"].rsplit("/", 1)[0]: r for r in records}
        header = ["Model", "n"] + [f"{s}" for s in SCORER_COLUMNS]
        lines = []
        for row in rows:
            folders = [r["source"].rsplit("/", 1)[0] for r in runs if _matches(r, row.runs)]
            cells = [row.key.label, str(row.n)]
            stats = {}
            for scorer in SCORER_COLUMNS:
                values = [_scorer_srs(records, folder, scorer, k, by_folder) for folder in folders]
                stats[scorer] = mean_std(values)
                cells.append(fmt_stat(stats[scorer], row.n) if stats[scorer].mean is not None else "–")
            lines.append(cells)
            csv_rows.append(_csv_record(dataset, row.key, row.n, row.seeds, k, stats))
        blocks.append(_table(header, lines, ["---", "---:"] + ["---:"] * len(SCORER_COLUMNS)))
    return "\n\n".join(blocks), csv_rows


def _matches(record: dict[str, Any], jobs: Sequence[Job]) -> bool:
    return any(job.results is record["results"] for job in jobs)


def _scorer_srs(
    records: Sequence[dict[str, Any]], folder: str, scorer: str, k: float, by_folder: dict[str, Any]
) -> float | None:
    for record in records:
        if not record["source"].startswith(folder + "/"):
            continue
        test = record["results"].get("test") or {}
        same_weights = mode_of(record["results"]) == mode_of(by_folder[folder]["results"])
        if test.get("scorer", "capacity") == scorer and test.get("layer", "fc1") == "fc1" and same_weights:
            return value_at_k(test.get("srs"), k)
    return None


RENDERERS: dict[str, Callable[[dict[str, Any]], tuple[str, list[dict[str, Any]]]]] = {
    "ablation": _ablation,
    "decomposition": _decomposition,
    "scorers": _scorers,
}


def render_table(export: dict[str, Any]) -> str:
    """The markdown table(s) of an export: what the README shows between its markers."""
    return RENDERERS[export["kind"]](export)[0]


def render_csv(export: dict[str, Any]) -> str:
    rows = RENDERERS[export["kind"]](export)[1]
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def machine_line(export: dict[str, Any]) -> str:
    m = export["machine"]
    flags = ", ".join(m.get("flags") or []) or "no AVX flags read"
    family = f" (family {m['family']}, model {m['model']})" if "family" in m and "model" in m else ""
    return f"{m['cpu']}{family}, {m.get('cores')} cores ({flags}); torch {m['torch']}, Python {m.get('python')}"


def runs_summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Where the trials and re-tests ran: machines, torch threads per run and precisions (each table says so)."""
    machines = sorted({machine_line({"machine": r["machine"]}) for r in results if (r.get("machine") or {}).get("cpu")})
    threads = sorted({(r.get("machine") or {}).get("threads") for r in results} - {None})
    precisions = sorted({(r.get("precision") or {}).get("used") for r in results} - {None})
    return {"machines": machines, "threads": threads, "precisions": precisions}


def render_markdown(export: dict[str, Any]) -> str:
    """``docs/results/<name>.md``: title, provenance, the table, and where every number came from."""
    n_runs = sum(_is_run_record(r) for r in export["records"])
    whose = "run's" if n_runs == 1 else "runs'"
    lines = [
        f"# {export['title']}",
        "",
        f"Machine: {machine_line(export)}.",
        "",
        "Command:",
        "",
        "```bash",
        export["command"],
        "```",
        "",
    ]
    if export.get("note"):
        lines += [export["note"], ""]
    lines += [
        render_table(export),
        "",
        f"From {n_runs} {whose} results.json ({len(export['records']) - n_runs} other evaluation files), all in "
        f"`{export['name']}.json`; mean ± sample std over seeds; accuracies in %, SRS in points, k = {export['k']:g}.",
    ]
    if export["kind"] == "ablation":
        lines.append("*paper*: Table 6 of Chang, Deng & Chen (2025).")
    if export["kind"] == "decomposition":
        groups = "; ".join(f"`{name}` = {', '.join(keys)} switched together" for name, keys in GROUPS.items())
        lines.append(f"Δ: the row minus its preset's row, paired by seed (mean ± std of the differences). {groups}.")
    return "\n".join(lines) + "\n"


# -- files and the README ----------------------------------------------------------------------------

README_BLOCK = re.compile(
    r"(<!-- results:(?P<name>[\w.-]+) -->\n)(?P<body>(?:.*?\n)??)(<!-- /results:(?P=name) -->)", re.S
)


def write_export(export: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    name = export["name"]
    return [
        write_text_atomic(out_dir / f"{name}.json", dumps(export)),
        write_text_atomic(out_dir / f"{name}.md", render_markdown(export)),
        write_text_atomic(out_dir / f"{name}.csv", render_csv(export)),
    ]


def dumps(export: dict[str, Any]) -> str:
    """The export as JSON, compact but diffable: one line per header key and per record."""
    items = [f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}" for key, value in export.items()
             if key != "records"]  # fmt: skip
    records = ",\n".join(f"  {json.dumps(r, ensure_ascii=False, separators=(',', ':'))}" for r in export["records"])
    return "{\n " + ",\n ".join([*items, f'"records": [\n{records}\n ]']) + "\n}\n"


def load_export(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def readme_blocks(readme: str) -> dict[str, str]:
    """``{name: table}`` of every results block in the README."""
    return {m["name"]: m["body"].removesuffix("\n") for m in README_BLOCK.finditer(readme)}


def fill_readme(readme: str, results_dir: Path) -> str:
    """The README with every results block re-rendered from ``results_dir/<name>.json``."""

    def replace(match: re.Match[str]) -> str:
        path = results_dir / f"{match['name']}.json"
        if not path.is_file():
            raise FileNotFoundError(f"README block results:{match['name']} has no {path}")
        return match.group(1) + render_table(load_export(path)) + "\n" + match.group(4)

    return README_BLOCK.sub(replace, readme)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m safr_lightning.sweep.export", description=__doc__.split("\n")[0])
    parser.add_argument("name", nargs="?", help="the export's file name under --out (e.g. sst2_table6_exact)")
    parser.add_argument("sweep_dirs", nargs="*", type=Path, help="sweep folders whose jobs it holds")
    parser.add_argument("--kind", choices=KINDS, default="ablation")
    parser.add_argument("--title", default="")
    parser.add_argument("--command", default="", help="the command(s) that produced the sweeps, as shown")
    parser.add_argument("--note", default="")
    parser.add_argument("--k", type=float, default=PAPER_K)
    parser.add_argument("--evaluations", nargs="*", default=[], help="evaluation files beside each job to add")
    parser.add_argument("--out", type=Path, default=Path("docs/results"))
    parser.add_argument("--readme", type=Path, help="re-render this README's results blocks from --out")
    args = parser.parse_args(argv)

    def body() -> int:
        if args.name:
            missing = [str(d) for d in args.sweep_dirs if not d.is_dir()]
            if missing or not args.sweep_dirs:
                raise SAFRError(f"give existing sweep folders (missing: {', '.join(missing) or 'none given'})")
            records = collect_records(args.sweep_dirs, args.evaluations)
            if not records:
                raise SAFRError("no finished job in those sweep folders")
            export = build_export(args.name, args.kind, records, title=args.title or args.name,
                                  command=args.command, k=args.k, note=args.note)  # fmt: skip
            for path in write_export(export, args.out):
                print(f"wrote {path}")
        if args.readme:
            if not args.readme.is_file():
                raise SAFRError(f"--readme {args.readme}: no such file")
            write_text_atomic(args.readme, fill_readme(args.readme.read_text(), args.out))
            print(f"wrote {args.readme}")
        if not args.name and not args.readme:
            parser.error("give NAME SWEEP_DIR... to export, and/or --readme README.md")
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
