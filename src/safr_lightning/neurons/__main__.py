"""``python -m safr_lightning.neurons ckpt_path=<run dir>``: FC1 neuron polysemy of a trained model.

Writes ``<run dir>/neurons/neurons.json`` (per-neuron cluster counts, monosemanticity, activation
mass; summaries over live neurons, over the neurons that carry the important tokens' FC1 mass and
over the rest) and two figures: clusters per neuron, and a few neurons' clusters with their example
tokens in context. The method is :mod:`safr_lightning.analysis.neurons`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig

from safr_lightning.analysis.neurons import (
    IMPORTANT_MASS_SHARE,
    NeuronClusters,
    TopActivations,
    cluster_neurons,
    gather_fc1_inputs,
    group_summary,
    important_neurons,
    top_activations,
)
from safr_lightning.checkpoints import resolve_checkpoint, run_dir_of
from safr_lightning.cli import UserErrorExit, quiet_known_warnings, run_cli
from safr_lightning.config import register_configs, validate_neurons
from safr_lightning.data.batches import TokenizedSplit
from safr_lightning.errors import SAFRError
from safr_lightning.evaluate import checkpoint_split, load_module, resolve_device
from safr_lightning.neurons import NEURONS_FILE, label_of
from safr_lightning.paths import CONFIG_DIR
from safr_lightning.plots.neurons import NeuronView, cluster_histogram, neuron_examples
from safr_lightning.plots.style import save_figure
from safr_lightning.results import machine_info, run_identity, write_results
from safr_lightning.rundir import check_writable

log = logging.getLogger("safr_lightning.neurons")
CONTEXT = 4  # words either side of an example token

register_configs()


def context(split: TokenizedSplit, token: int, words: Any) -> str:
    """``… w-4 … [w] … w+4 …`` for the global token id ``token`` of ``split``; ``words`` maps ids to strings."""
    text = int(torch.searchsorted(split.offsets, torch.tensor(token), right=True)) - 1
    start, end = int(split.offsets[text]), int(split.offsets[text + 1])
    ids = split.tokens[max(start, token - CONTEXT) : min(end, token + CONTEXT + 1)].tolist()
    at = token - max(start, token - CONTEXT)
    shown = [words(i) for i in ids]
    shown[at] = f"[{shown[at]}]"
    return ("… " if token - CONTEXT > start else "") + " ".join(shown) + (" …" if token + CONTEXT + 1 < end else "")


def shown_neurons(top: TopActivations, alive: np.ndarray, n: int) -> list[int]:
    """The ``n`` live neurons with the most FC1 mass on important tokens (on all tokens without VMASK)."""
    mass = (top.mass_important if top.mass_important is not None else top.mass).numpy()
    order = [int(j) for j in np.argsort(-mass, kind="stable") if alive[j]]
    return order[:n]


def neuron_views(
    top: TopActivations, result: NeuronClusters, important: np.ndarray | None, split: TokenizedSplit, words: Any,
    chosen: list[int],
) -> list[NeuronView]:  # fmt: skip
    views = []
    for j in chosen:
        n = int(result.n_examples[j])
        labels = result.labels[j, :n]
        clusters = [[context(split, int(top.tokens[j, i]), words) for i in np.flatnonzero(labels == c)]
                    for c in range(int(result.clusters[j]))]  # fmt: skip
        kind = "important-token neuron" if important is not None and important[j] else "neuron"
        note = f"{kind}, {result.clusters[j]} clusters of {n} examples, monosemanticity {result.monosemanticity[j]:.2f}"
        views.append(NeuronView(j, note, clusters))
    return views


def _members(alive: np.ndarray, important: np.ndarray | None) -> dict[str, np.ndarray]:
    """The neuron groups summarised: live neurons, and with VMASK the important-token neurons and the rest."""
    if important is None:
        return {"live": alive}
    return {"live": alive, "important": important, "rest": alive & ~important}


def _floats(values: np.ndarray, digits: int = 6) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), digits) for v in values]


def run_neurons(cfg: DictConfig) -> dict[str, Any]:
    validate_neurons(cfg)
    quiet_known_warnings()
    ckpt = resolve_checkpoint(cfg.ckpt_path)
    out_dir = Path(cfg.out_dir) if cfg.out_dir else run_dir_of(ckpt) / "neurons"
    check_writable(out_dir, "the neuron analysis")  # before minutes of work, not after
    device = resolve_device(cfg.device)
    module = load_module(ckpt, device)
    datamodule, dataset_cfg, run_config = checkpoint_split(
        module, ckpt, cfg.dataset, cfg.split, cfg.limit, cfg.eval_batch_size
    )
    split = datamodule.splits[cfg.split]
    start = time.perf_counter()
    top = top_activations(module.model, datamodule.loader(cfg.split), split.offsets, int(cfg.top_k), device)
    wanted = torch.unique(top.tokens[top.tokens >= 0])
    if len(wanted) == 0:
        raise SAFRError(f"no FC1 neuron activates on any token of the {cfg.split} split: every neuron is dead")
    h = gather_fc1_inputs(module.model, datamodule.loader(cfg.split), split.offsets, wanted, device)
    weight = module.model.blocks[0].fc1.weight
    result = cluster_neurons(top, h, wanted, weight, float(cfg.threshold))
    seconds = time.perf_counter() - start

    alive = result.clusters > 0
    important = None
    if top.mass_important is not None:
        important = important_neurons(top.mass_important.numpy(), alive)
    groups = {name: group_summary(result.clusters, result.monosemanticity, members)
              for name, members in _members(alive, important).items()}  # fmt: skip
    sweep = {}
    for t in cfg.sweep_thresholds:
        other = result if float(t) == float(cfg.threshold) else cluster_neurons(top, h, wanted, weight, float(t))
        sweep[f"{float(t):g}"] = {name: group_summary(other.clusters, other.monosemanticity, members)
                                  for name, members in _members(alive, important).items()}  # fmt: skip
    identity = run_identity(run_config) if "dataset" in run_config and "model" in run_config else {}
    record = {
        **identity,
        "dataset": dataset_cfg.name,
        "status": "ok",
        "checkpoint": str(ckpt),
        "split": cfg.split,
        "texts": len(split),
        "tokens": top.n_tokens,
        "settings": {
            "top_k": int(cfg.top_k),
            "threshold": float(cfg.threshold),
            "linkage": "average",
            "distance": "cosine",
            "layer": "fc1",
            "important": "top 30% of each text by VMASK keep probability",
            "important_neurons": f"fewest live neurons carrying {IMPORTANT_MASS_SHARE:g} of the important "
            "tokens' FC1 mass",
        },
        "neurons": len(alive),
        "dead": int((~alive).sum()),
        "summary": groups,
        "by_threshold": sweep,
        "per_neuron": {
            "clusters": result.clusters.tolist(),
            "monosemanticity": _floats(result.monosemanticity, 4),
            "examples": result.n_examples.tolist(),
            "active_tokens": top.active.tolist(),
            "mass": _floats(top.mass.numpy(), 4),
            "mass_important": None if top.mass_important is None else _floats(top.mass_important.numpy(), 4),
            "important": None if important is None else important.tolist(),
        },
        "timing": {"seconds": round(seconds, 2), "device": str(device)},
        "machine": machine_info(),
    }
    path = write_results(out_dir, record, name=NEURONS_FILE)

    label = label_of(identity)
    series = {"live neurons": result.clusters[alive]}
    if important is not None:
        series = {"important-token neurons": result.clusters[important],
                  "other live neurons": result.clusters[alive & ~important]}  # fmt: skip
    figures = save_figure(cluster_histogram(series, f"{label}: feature clusters per FC1 neuron ({cfg.split})"),
                          out_dir / "clusters_per_neuron", formats=tuple(cfg.formats))  # fmt: skip
    chosen = shown_neurons(top, alive, int(cfg.show_neurons))
    if chosen:
        words = module.tokenizer.id_to_token
        views = neuron_views(top, result, important, split, words, chosen)
        fig = neuron_examples(views, f"{label}: feature clusters of the neurons with most important-token mass")
        figures += save_figure(fig, out_dir / "neuron_examples", formats=tuple(cfg.formats))
    live = groups["live"]
    line = (f"{label}: {record['neurons']} neurons, {record['dead']} dead; live: {live['clusters_mean']:.2f} clusters "
            f"per neuron, {100 * live['monosemantic_share']:.1f}% monosemantic")  # fmt: skip
    if important is not None:
        imp, rest = groups["important"], groups["rest"]
        line += (f"; important-token neurons ({imp['neurons']}): {imp['clusters_mean']:.2f}, "
                 f"rest: {rest['clusters_mean']:.2f}")  # fmt: skip
    print(line)
    print(f"wrote {path} and {len(figures)} figures ({seconds:.1f} s over {top.n_tokens} tokens)")
    return record


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="neurons")
def _hydra_main(cfg: DictConfig) -> dict[str, Any] | None:
    try:
        return run_neurons(cfg)
    except SAFRError as exc:
        raise UserErrorExit(exc) from exc


def main() -> Any:
    return run_cli(_hydra_main)


if __name__ == "__main__":
    main()
