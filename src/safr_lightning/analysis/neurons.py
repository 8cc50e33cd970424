"""Neuron-side polysemy of FC1: neuron embeddings and feature clusters (Foote 2024, `neuron-embeddings`).

SAFR's claim is about allocation, measured so far from the token side (capacity, SRS). This module
reads it from the neuron side. For FC1 neuron j with input weight row ``w_j`` [D] and an input token
whose pre-FC1 representation is ``h`` [D] (the trace's ``fc1_in``), the **neuron embedding** is
``e = h ⊙ w_j``: summed over its entries and offset by the bias it is the neuron's pre-activation.
A neuron's **feature clusters** group its ``top_k`` most strongly activating (text, position)
examples by average-linkage agglomerative clustering under the cosine distance ``1 − S_C(e_a, e_b)``,
cut at ``threshold``; the cluster count is the neuron's polysemy, and its **monosemanticity** is the
activation-weighted share of its largest cluster (1: one cluster; near 1/c: c equal clusters).
A **dead** neuron never activates (ReLU output > 0) on the split.

Two passes over the split, both batched: the first keeps each neuron's top-k activations (a
running ``topk`` over [F, k + tokens of the batch]) and its activation mass on all and on important
tokens (Table 3's: the top 30 % of each text by VMASK keep probability); the second recomputes
``fc1_in`` only for the chosen examples. Memory is O(F·k·D), not O(tokens·D).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from safr_lightning.metrics.deletion import important_tokens

Batch = dict[str, torch.Tensor]
# The share of the important tokens' FC1 mass that the "important-token neurons" carry together.
IMPORTANT_MASS_SHARE = 0.5


def neuron_embeddings(h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``e = h ⊙ w``: ``h`` [..., D] pre-FC1 representations, ``weight`` [..., D] (broadcast) -> [..., D]."""
    return h * weight


def cosine_distances(e: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``1 − S_C(e_a, e_b)`` for every pair of rows: ``e`` [..., K, D] -> [..., K, K] in [0, 2], 0 on the diagonal."""
    unit = e.double() / e.double().norm(dim=-1, keepdim=True).clamp_min(eps)
    distance = (1.0 - unit @ unit.transpose(-1, -2)).clamp_(0.0, 2.0)
    distance.diagonal(dim1=-2, dim2=-1).zero_()
    return distance


def feature_clusters(distance: np.ndarray, threshold: float) -> np.ndarray:
    """Cluster labels 0..c-1 [K] of K examples from their distance matrix [K, K].

    Average linkage (UPGMA), cut where clusters are more than ``threshold`` apart on average. Labels
    are renumbered by first appearance, so the strongest example is always in cluster 0.
    """
    k = distance.shape[0]
    if k <= 1:
        return np.zeros(k, dtype=np.int64)
    tree = linkage(squareform(distance, checks=False), method="average")
    raw = fcluster(tree, t=threshold, criterion="distance")
    _, first, inverse = np.unique(raw, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))  # cluster ids by the position of their first member
    return order[inverse].astype(np.int64)


def monosemanticity(labels: np.ndarray, weights: np.ndarray) -> float:
    """The ``weights``-weighted share of the largest cluster, in (0, 1]; 1 for a single cluster."""
    totals = np.bincount(labels, weights=weights)
    return float(totals.max() / totals.sum()) if totals.sum() > 0 else 1.0


@dataclass
class TopActivations:
    """Pass 1 over a split: each FC1 neuron's strongest examples and activation mass.

    ``values`` [F, K] the top activations (descending; -inf where the neuron has fewer than K active
    tokens), ``tokens`` [F, K] their global token ids (``offsets[text] + position`` in the split,
    -1 where none); ``active`` [F] how many tokens activate each neuron; ``mass`` [F] and
    ``mass_important`` [F] its summed activation over all and over important tokens (the latter
    None without VMASK); ``n_tokens`` real tokens seen.
    """

    values: torch.Tensor
    tokens: torch.Tensor
    active: torch.Tensor
    mass: torch.Tensor
    mass_important: torch.Tensor | None
    n_tokens: int


def _global_ids(batch: Batch, offsets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Global token ids [B, T] of a batch's positions (``offsets[index] + position``)."""
    positions = torch.arange(mask.shape[1], device=mask.device)
    return offsets.to(mask.device)[batch["index"].to(mask.device)][:, None] + positions


def _forward(
    model: torch.nn.Module, batch: Batch, device: torch.device
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    ids = batch["input_ids"].to(device)
    mask = batch["attention_mask"].to(device).bool()
    trace = model(ids, mask, return_trace=True).trace
    # A fixed-length (paper-mode) model pads the batch itself; its trace and mask are that wide.
    return trace, trace["attention_mask"].bool()


@torch.no_grad()
def top_activations(
    model: torch.nn.Module, batches: Iterable[Batch], offsets: torch.Tensor, top_k: int, device: torch.device
) -> TopActivations:
    """Pass 1: stream the split once, keeping every FC1 neuron's ``top_k`` activations [F, K]."""
    values = tokens = active = mass = mass_important = None
    n_tokens = 0
    has_vmask = getattr(model, "vmask", None) is not None
    for batch in batches:
        trace, mask = _forward(model, batch, device)
        acts = trace["fc1"].float()  # [B, T, F], post-ReLU
        width = batch["attention_mask"].shape[1]
        real = mask[:, :width]
        flat = acts[:, :width][real]  # [N, F]
        gids = _global_ids(batch, offsets, real)[real]  # [N]
        if values is None:
            f = flat.shape[1]
            values = torch.full((f, top_k), float("-inf"), device=device)
            tokens = torch.full((f, top_k), -1, dtype=torch.long, device=device)
            active = torch.zeros(f, dtype=torch.long, device=device)
            mass = torch.zeros(f, dtype=torch.float64, device=device)
            mass_important = torch.zeros(f, dtype=torch.float64, device=device) if has_vmask else None
        assert tokens is not None and active is not None and mass is not None
        # Zero activations are no example of the neuron: they never enter the top k.
        candidates = torch.cat([values, flat.T.masked_fill(flat.T <= 0, float("-inf"))], dim=1)
        ids = torch.cat([tokens, gids[None].expand(flat.shape[1], -1)], dim=1)
        values, where = candidates.topk(top_k, dim=1)
        tokens = ids.gather(1, where).masked_fill(values == float("-inf"), -1)
        active += (flat > 0).sum(0)
        mass += flat.double().sum(0)
        if mass_important is not None:
            important = important_tokens(trace["vmask_prob"][:, :width], real)[real]  # [N]
            mass_important += flat[important].double().sum(0)
        n_tokens += int(real.sum())
    if values is None:
        raise ValueError("no batches: the split is empty")
    assert tokens is not None and active is not None and mass is not None
    return TopActivations(values.cpu(), tokens.cpu(), active.cpu(), mass.cpu(),
                          None if mass_important is None else mass_important.cpu(), n_tokens)  # fmt: skip


@torch.no_grad()
def gather_fc1_inputs(
    model: torch.nn.Module, batches: Iterable[Batch], offsets: torch.Tensor, wanted: torch.Tensor, device: torch.device
) -> torch.Tensor:
    """Pass 2: ``fc1_in`` [len(wanted), D] of the global token ids ``wanted`` (sorted, unique)."""
    out: torch.Tensor | None = None
    found = torch.zeros(len(wanted), dtype=torch.bool)
    wanted = wanted.to(device)
    for batch in batches:
        trace, mask = _forward(model, batch, device)
        width = batch["attention_mask"].shape[1]
        real = mask[:, :width]
        gids = _global_ids(batch, offsets, real)[real]
        where = torch.searchsorted(wanted, gids).clamp_max(len(wanted) - 1)
        hit = wanted[where] == gids
        if not bool(hit.any()):
            continue
        h = trace["fc1_in"][:, :width][real].float()  # [N, D]
        if out is None:
            out = torch.zeros(len(wanted), h.shape[1])
        out[where[hit].cpu()] = h[hit].cpu()
        found[where[hit].cpu()] = True
    if out is None or not bool(found.all()):
        raise RuntimeError("the second pass did not meet every chosen example: the batches changed between passes")
    return out


@dataclass
class NeuronClusters:
    """Per FC1 neuron [F]: cluster count (0 = dead), monosemanticity (nan = dead), example count;
    and per neuron the cluster label of each of its examples ([F, K], -1 where no example)."""

    clusters: np.ndarray
    monosemanticity: np.ndarray
    n_examples: np.ndarray
    labels: np.ndarray


def cluster_neurons(
    top: TopActivations,
    h: torch.Tensor,
    wanted: torch.Tensor,
    weight: torch.Tensor,
    threshold: float,
    chunk: int = 128,
) -> NeuronClusters:
    """Feature clusters of every neuron: ``h`` [len(wanted), D] from :func:`gather_fc1_inputs`,
    ``weight`` [F, D] FC1's input weights. The distances come from batched matmuls over ``chunk``
    neurons at a time ([chunk, K, D] embeddings in float64: memory stays bounded whatever F)."""
    f, k = top.tokens.shape
    present = top.tokens >= 0  # [F, K]
    rows = torch.searchsorted(wanted, top.tokens.clamp_min(0))  # [F, K] rows of h
    w = weight.detach().float().cpu()
    distances = np.concatenate(
        [
            cosine_distances(neuron_embeddings(h[rows[i : i + chunk]], w[i : i + chunk, None, :])).numpy()
            for i in range(0, f, chunk)
        ]
    )  # fmt: skip  [F, K, K]
    clusters = np.zeros(f, dtype=np.int64)
    mono = np.full(f, np.nan)
    counts = present.sum(1).numpy()
    labels = np.full((f, k), -1, dtype=np.int64)
    weights = top.values.clamp_min(0).numpy()
    for j in range(f):
        n = int(counts[j])
        if n == 0:
            continue  # dead: never active on the split
        lab = feature_clusters(distances[j, :n, :n], threshold)
        labels[j, :n] = lab
        clusters[j] = int(lab.max()) + 1
        mono[j] = monosemanticity(lab, weights[j, :n])
    return NeuronClusters(clusters, mono, counts, labels)


def important_neurons(mass_important: np.ndarray, alive: np.ndarray, share: float = IMPORTANT_MASS_SHARE) -> np.ndarray:
    """The fewest live neurons that together carry ``share`` of the important tokens' FC1 mass: bool [F].

    Neurons are taken in decreasing order of the mass they put on important tokens.
    """
    order = np.argsort(-mass_important, kind="stable")
    order = order[alive[order]]
    cumulative = np.cumsum(mass_important[order])
    total = cumulative[-1] if len(cumulative) else 0.0
    chosen = np.zeros(len(mass_important), dtype=bool)
    if total <= 0:
        return chosen
    n = int(np.searchsorted(cumulative, share * total, side="left")) + 1
    chosen[order[:n]] = True
    return chosen


def group_summary(clusters: np.ndarray, mono: np.ndarray, members: np.ndarray) -> dict[str, object]:
    """Counts, mean ± std of clusters and monosemanticity, and the cluster-count histogram of ``members``."""
    c, m = clusters[members], mono[members]
    hist = {str(int(v)): int(n) for v, n in zip(*np.unique(c, return_counts=True), strict=True)}
    return {
        "neurons": int(members.sum()),
        "clusters_mean": float(c.mean()) if len(c) else None,
        "clusters_std": float(c.std()) if len(c) else None,
        "clusters_median": float(np.median(c)) if len(c) else None,
        "monosemantic_share": float((c == 1).mean()) if len(c) else None,
        "monosemanticity_mean": float(m.mean()) if len(m) else None,
        "clusters_histogram": hist,
    }
