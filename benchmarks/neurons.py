"""The neuron analysis (``python -m safr_lightning.neurons``) against a naive version, on the SST-2 test set.

    SAFR_DATA_DIR=../shared/data PYTHONPATH=src python benchmarks/neurons.py CKPT_OR_RUN_DIR [--repeats 3]

Ours: two batched passes (a running top-k per neuron, then ``fc1_in`` of the chosen examples only)
and the distances of all neurons from one batched matmul. Naive: one text at a time through the
model, every token's FC1 activations and ``fc1_in`` kept in memory ([tokens, F] and [tokens, D]),
then per neuron its top-k, embeddings and distances. Both cluster with the same function, and the
cluster counts must agree for at least 95 % of the neurons (exit 1 otherwise). Reported: wall
seconds (minimum over ``--repeats``) and the peak RSS growth of each version, each run in its own
process (after the model and data are loaded).
"""

from __future__ import annotations

import argparse
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from safr_lightning.analysis.neurons import (
    cluster_neurons,
    cosine_distances,
    feature_clusters,
    gather_fc1_inputs,
    neuron_embeddings,
    top_activations,
)
from safr_lightning.checkpoints import resolve_checkpoint
from safr_lightning.evaluate import checkpoint_split, load_module

TOP_K, THRESHOLD = 50, 0.5
CPU = torch.device("cpu")


def ours(model: torch.nn.Module, datamodule, split) -> np.ndarray:  # type: ignore[no-untyped-def]
    top = top_activations(model, datamodule.loader("test"), split.offsets, TOP_K, CPU)
    wanted = torch.unique(top.tokens[top.tokens >= 0])
    h = gather_fc1_inputs(model, datamodule.loader("test"), split.offsets, wanted, CPU)
    return cluster_neurons(top, h, wanted, model.blocks[0].fc1.weight, THRESHOLD).clusters


@torch.no_grad()
def naive(model: torch.nn.Module, split) -> np.ndarray:  # type: ignore[no-untyped-def]
    acts, inputs = [], []
    for i in range(len(split)):
        ids = split.tokens[int(split.offsets[i]) : int(split.offsets[i + 1])][None]
        trace = model(ids, torch.ones_like(ids, dtype=torch.bool), return_trace=True).trace
        acts.append(trace["fc1"][0])
        inputs.append(trace["fc1_in"][0])
    a, h = torch.cat(acts), torch.cat(inputs)  # [N, F], [N, D]
    weight = model.blocks[0].fc1.weight
    clusters = np.zeros(a.shape[1], dtype=np.int64)
    for j in range(a.shape[1]):
        values, index = a[:, j].topk(min(TOP_K, a.shape[0]))
        index = index[values > 0]
        if len(index) == 0:
            continue
        e = neuron_embeddings(h[index], weight[j])
        clusters[j] = int(feature_clusters(cosine_distances(e).numpy(), THRESHOLD).max()) + 1
    return clusters


def measure(fn, repeats: int) -> tuple[float, np.ndarray, float]:  # type: ignore[no-untyped-def]
    """Best wall seconds over ``repeats``, the result, and this process's peak RSS growth in MB."""
    best, result = float("inf"), None
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return best, result, grown


def child(which: str, ckpt: str, repeats: int) -> tuple[float, np.ndarray, float, str]:
    """Run one version in a fresh process, so that each peak memory is its own."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clusters.npy"
        proc = subprocess.run([sys.executable, __file__, ckpt, "--repeats", str(repeats), "--only", which,
                               "--save", str(out)], capture_output=True, text=True, check=True)  # fmt: skip
        *_, info, last = proc.stdout.strip().splitlines()
        seconds, grown = (float(v) for v in last.split())
        return seconds, np.load(out), grown, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ckpt")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=("ours", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only is None:
        compare(args.ckpt, args.repeats)
        return
    ckpt = resolve_checkpoint(args.ckpt)
    module = load_module(ckpt, CPU)
    datamodule, _, _ = checkpoint_split(module, ckpt, None, "test", None, None)
    split = datamodule.splits["test"]
    if args.only == "ours":
        seconds, clusters, grown = measure(lambda: ours(module.model, datamodule, split), args.repeats)
    else:
        seconds, clusters, grown = measure(lambda: naive(module.model, split), args.repeats)
    np.save(args.save, clusters)
    print(f"{len(split)} texts, {int(split.offsets[-1])} tokens")
    print(seconds, grown)


def compare(ckpt: str, repeats: int) -> None:
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"top_k {TOP_K}, threshold {THRESHOLD}, {repeats} repeats each, each version in its own process")
    t_ours, c_ours, m_ours, info = child("ours", ckpt, repeats)
    t_naive, c_naive, m_naive, _ = child("naive", ckpt, repeats)
    print(info)
    print(f"ours  {t_ours:7.2f} s  (+{m_ours:.0f} MB peak RSS)")
    print(f"naive {t_naive:7.2f} s  (+{m_naive:.0f} MB peak RSS)   speed-up {t_naive / t_ours:.1f}x")
    # One text alone vs in a padded batch: float sums in another order, so an example at the top-k
    # boundary may swap with its neighbour. The counts must agree for (nearly) every neuron.
    agree = float((c_ours == c_naive).mean())
    print(f"cluster counts equal for {100 * agree:.1f}% of neurons (mean {c_ours.mean():.2f} vs {c_naive.mean():.2f})")
    sys.exit(0 if agree >= 0.95 else 1)


if __name__ == "__main__":
    main()
