"""``python -m safr_lightning.neurons.compare RUN_OR_JSON ... --out DIR``: several models' neuron polysemy side by side.

Each argument is a ``neurons.json`` (from ``python -m safr_lightning.neurons``) or a run directory
holding ``neurons/neurons.json``. Writes ``neurons_comparison.md`` (one row per model: dead neurons,
clusters per live neuron, the important-token neurons against the rest, and the means at every
threshold of ``by_threshold``) and ``neurons_comparison.png``: clusters per neuron, one bar series per
model, for all live neurons and for the important-token neurons.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from safr_lightning.cli import run_main
from safr_lightning.errors import SAFRError
from safr_lightning.files import write_text_atomic
from safr_lightning.neurons import NEURONS_FILE, label_of
from safr_lightning.plots.neurons import SERIES, cluster_histogram
from safr_lightning.plots.style import save_figure
from safr_lightning.results import RunRecord, load_record
from safr_lightning.rundir import check_writable


def find_record(path: Path) -> RunRecord:
    """The neurons.json that ``path`` names (the file, ``<dir>/neurons.json`` or ``<dir>/neurons/neurons.json``)."""
    for candidate in (path, path / NEURONS_FILE, path / "neurons" / NEURONS_FILE):
        if candidate.is_file():
            return load_record(candidate)
    raise SAFRError(f"{path}: no {NEURONS_FILE} (run python -m safr_lightning.neurons ckpt_path={path} first)")


def _mean_std(values: Sequence[float | None], fmt: str = ".2f", scale: float = 1.0) -> str:
    """``mean ± std`` over runs (sample std; the mean alone for one run); – when none has a value."""
    present = np.asarray([scale * v for v in values if v is not None], dtype=float)
    if len(present) == 0:
        return "–"
    if len(present) == 1:
        return format(present[0], fmt)
    return f"{format(present.mean(), fmt)} ± {format(present.std(ddof=1), fmt)}"


def _get(data: Any, group: str, key: str, threshold: str | None = None) -> float | None:
    block = data.get("summary") if threshold is None else (data.get("by_threshold") or {}).get(threshold)
    value = ((block or {}).get(group) or {}).get(key)
    return None if value is None else float(value)


def grouped(records: Sequence[RunRecord], labels: Sequence[str]) -> dict[str, list[Any]]:
    """Runs by label (model and λ), in first-seen order: several seeds of one model form one row."""
    groups: dict[str, list[Any]] = {}
    for record, label in zip(records, labels, strict=True):
        groups.setdefault(label, []).append(record.data)
    return groups


def markdown(records: Sequence[RunRecord], labels: Sequence[str]) -> str:
    first = records[0].data
    settings = first.get("settings") or {}
    thresholds = list((first.get("by_threshold") or {}).keys())
    groups = grouped(records, labels)
    lines = [
        f"# FC1 neuron polysemy: {first.get('dataset', '?')} {first.get('split', '?')} split",
        "",
        f"Feature clusters of each neuron's top {settings.get('top_k')} activating (text, position) examples: "
        f"{settings.get('linkage')}-linkage clustering of neuron embeddings h ⊙ w_j under the cosine distance, "
        f"cut at {settings.get('threshold')}. Monosemantic = one cluster; monosemanticity = the activation-weighted "
        f"share of a neuron's largest cluster. Important-token neurons: {settings.get('important_neurons')} "
        f"(important = {settings.get('important')}). Values: mean ± std over runs (seeds).",
        "",
        "| model | runs | dead | clusters / live neuron | monosemantic | monosemanticity | important-token neurons "
        "| their clusters | rest's clusters |",
        "|---" * 9 + "|",
    ]
    for label, runs in groups.items():

        def stat(group: str, key: str, fmt: str = ".2f", scale: float = 1.0, runs: list[Any] = runs) -> str:
            return _mean_std([_get(d, group, key) for d in runs], fmt, scale)

        dead = _mean_std([d.get("dead") for d in runs], ".1f")
        lines.append(
            f"| {label} | {len(runs)} | {dead} | {stat('live', 'clusters_mean')} | "
            f"{stat('live', 'monosemantic_share', '.1f', 100.0)}% | {stat('live', 'monosemanticity_mean', '.3f')} | "
            f"{stat('important', 'neurons', '.0f')} | {stat('important', 'clusters_mean')} | "
            f"{stat('rest', 'clusters_mean')} |"
        )
    lines += [
        "",
        "Clusters per live neuron at other cuts (important-token neurons / the rest, where the model has VMASK):",
        "",
        "| model | " + " | ".join(f"cut {t}" for t in thresholds) + " |",
        "|---" * (1 + len(thresholds)) + "|",
    ]
    for label, runs in groups.items():
        cells = []
        for t in thresholds:
            cell = _mean_std([_get(d, "live", "clusters_mean", t) for d in runs])
            if any(_get(d, "important", "clusters_mean", t) is not None for d in runs):
                imp = _mean_std([_get(d, "important", "clusters_mean", t) for d in runs])
                rest = _mean_std([_get(d, "rest", "clusters_mean", t) for d in runs])
                cell += f" ({imp} / {rest})"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    machine = first.get("machine") or {}
    seconds = [float((r.data.get("timing") or {}).get("seconds", "nan")) for r in records]
    lines += [
        "",
        f"Machine: {machine.get('cpu', '?')} (family {machine.get('family', '?')}, model {machine.get('model', '?')}), "
        f"{machine.get('threads', '?')} torch threads, torch {machine.get('torch', '?')}; "
        f"{min(seconds):.1f}–{max(seconds):.1f} s per model (both passes and the clustering).",
        "",
        "Sources: " + ", ".join(f"`{r.path}`" for r in records),
        "",
    ]
    return "\n".join(lines)


def compare(paths: Sequence[Path], out: Path, labels: Sequence[str] | None = None) -> list[Path]:
    records = [find_record(p) for p in paths]
    names = list(labels) if labels else [label_of(r.data) for r in records]
    if len(names) != len(records):
        raise SAFRError(f"--labels gives {len(names)} names for {len(records)} inputs")
    check_writable(out, "the comparison")
    out.mkdir(parents=True, exist_ok=True)
    written = [write_text_atomic(out / "neurons_comparison.md", markdown(records, names))]
    first = records[0].data
    where = f"{first.get('dataset', '?')} {first.get('split', '?')}"
    # Several seeds of one model: their neurons pooled into one bar series.
    live = {n: np.concatenate([_clusters(d, "live") for d in runs]) for n, runs in grouped(records, names).items()}
    color = dict(zip(live, SERIES * 3, strict=False))  # one colour per model in both figures
    written += save_figure(cluster_histogram(live, f"{where}: feature clusters per live FC1 neuron"),
                           out / "neurons_comparison", formats=("png",))  # fmt: skip
    important = {}
    for n, runs in grouped(records, names).items():
        parts = [c for d in runs if (c := _clusters(d, "important")) is not None]
        if parts:
            important[n] = np.concatenate(parts)
    if important:
        fig = cluster_histogram(important, f"{where}: the neurons carrying the important tokens' FC1 mass",
                                [color[n] for n in important])  # fmt: skip
        written += save_figure(fig, out / "neurons_comparison_important", formats=("png",))
    return written


def _clusters(data: Any, group: str) -> np.ndarray:
    per = data.get("per_neuron") or {}
    clusters = np.asarray(per.get("clusters") or [], dtype=np.int64)
    if group == "live":
        return clusters[clusters > 0]
    flags = per.get("important")
    return None if flags is None else clusters[np.asarray(flags, dtype=bool)]  # type: ignore[return-value]


def main(argv: Sequence[str] | None = None) -> NoReturn:
    parser = argparse.ArgumentParser(
        prog="python -m safr_lightning.neurons.compare", description=__doc__.split("\n")[0]
    )
    parser.add_argument("inputs", nargs="+", type=Path, help="neurons.json files or run directories")
    parser.add_argument("--out", type=Path, required=True, help="where the table and figures go")
    parser.add_argument("--labels", nargs="*", help="one name per input (default: model and λ)")
    args = parser.parse_args(argv)

    def body() -> int:
        for path in compare(args.inputs, args.out, args.labels):
            print(f"wrote {path}")
        return 0

    sys.exit(run_main(body))


if __name__ == "__main__":
    main()
