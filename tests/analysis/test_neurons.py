from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from safr_lightning.analysis.neurons import (
    cluster_neurons,
    cosine_distances,
    feature_clusters,
    gather_fc1_inputs,
    important_neurons,
    monosemanticity,
    neuron_embeddings,
    top_activations,
)
from safr_lightning.data.batches import TokenizedSplit
from safr_lightning.model.transformer import SAFRTransformer
from tests import reference as ref

LENGTHS = [5, 1, 3, 7, 2, 6, 1, 4]  # padding in every batch, one-token texts
CPU = torch.device("cpu")


def tiny(vmask: bool = True, seed: int = 0) -> SAFRTransformer:
    torch.manual_seed(seed)
    return SAFRTransformer(30, 2, d_model=16, n_heads=4, d_ff=12, vmask=vmask, vmask_hidden=8).eval()


def tiny_split(seed: int = 0) -> TokenizedSplit:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(LENGTHS)
    tokens = torch.randint(2, 30, (int(lengths.sum()),), generator=g)
    return TokenizedSplit(tokens, lengths, torch.zeros(len(LENGTHS), dtype=torch.long))


def batches(split: TokenizedSplit, size: int = 3) -> list[dict[str, torch.Tensor]]:
    order = list(range(len(split)))[::-1]  # not in split order: ids must come from `index`
    return [split.__getitems__(order[i : i + size]) for i in range(0, len(order), size)]


@torch.no_grad()
def token_table(model: SAFRTransformer, split: TokenizedSplit) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Slow reference, one text at a time: every real token's FC1 activations [N, F], fc1_in [N, D], importance [N]."""
    acts, inputs, important = [], [], []
    for i in range(len(split)):
        ids = split.tokens[int(split.offsets[i]) : int(split.offsets[i + 1])][None]
        trace = model(ids, torch.ones_like(ids, dtype=torch.bool), return_trace=True).trace
        acts.append(trace["fc1"][0])
        inputs.append(trace["fc1_in"][0])
        mask = torch.ones_like(ids, dtype=torch.bool)
        important.append(ref.important_tokens(trace["vmask_prob"], mask, 30)[0])
    return torch.cat(acts), torch.cat(inputs), torch.cat(important)


def test_neuron_embedding_summed_plus_bias_is_the_pre_activation() -> None:
    model, split = tiny(), tiny_split()
    batch = split.__getitems__(list(range(len(split))))
    trace = model(batch["input_ids"], batch["attention_mask"], return_trace=True).trace
    fc1 = model.blocks[0].fc1
    h = trace["fc1_in"]  # [B, T, D]
    for j in range(fc1.out_features):
        e = neuron_embeddings(h, fc1.weight[j])
        pre = e.sum(-1) + fc1.bias[j]
        torch.testing.assert_close(pre, (h @ fc1.weight.T + fc1.bias)[..., j], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(torch.relu(pre), trace["fc1"][..., j], rtol=1e-5, atol=1e-5)


def groups_of(n_per_group: list[int], directions: list[int], seed: int = 0, dim: int = 8) -> torch.Tensor:
    """Pre-FC1 vectors [N, dim]: group g along basis direction directions[g], plus small noise."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for n, d in zip(n_per_group, directions, strict=True):
        base = torch.zeros(dim)
        base[d] = 1.0
        rows.append(base + 0.05 * torch.randn(n, dim, generator=g) + 0.5 * torch.rand(n, 1, generator=g) * base)
    return torch.cat(rows)


def test_a_neuron_for_two_unrelated_token_groups_has_two_clusters_and_for_one_group_one() -> None:
    w = torch.zeros(8)
    w[0], w[5] = 1.3, 0.7  # the neuron reads both directions
    two = neuron_embeddings(groups_of([6, 9], [0, 5]), w)
    labels = feature_clusters(cosine_distances(two).numpy(), threshold=0.5)
    assert labels.max() + 1 == 2
    assert len(set(labels[:6])) == 1 and len(set(labels[6:])) == 1 and labels[0] != labels[6]
    one = neuron_embeddings(groups_of([15], [0], seed=1), w)
    assert feature_clusters(cosine_distances(one).numpy(), threshold=0.5).max() + 1 == 1


def reference_average_linkage(distance: np.ndarray, threshold: float) -> list[set[int]]:
    """Slow UPGMA: merge the two closest clusters (mean pairwise distance) while that is <= threshold."""
    clusters = [{i} for i in range(len(distance))]
    while len(clusters) > 1:
        best = min(
            ((np.mean([distance[a, b] for a in x for b in y]), i, j)
             for (i, x), (j, y) in itertools.combinations(enumerate(clusters), 2)),
        )  # fmt: skip
        if best[0] > threshold:
            break
        _, i, j = best
        clusters[i] |= clusters[j]
        del clusters[j]
    return clusters


@pytest.mark.parametrize(("seed", "threshold"), [(0, 0.3), (1, 0.6), (2, 0.9), (3, 1.2)])
def test_feature_clusters_equal_a_slow_average_linkage(seed: int, threshold: float) -> None:
    e = torch.randn(14, 5, generator=torch.Generator().manual_seed(seed))
    distance = cosine_distances(e).numpy()
    labels = feature_clusters(distance, threshold)
    got = {frozenset(np.flatnonzero(labels == c).tolist()) for c in range(labels.max() + 1)}
    assert got == {frozenset(c) for c in reference_average_linkage(distance, threshold)}
    assert labels[0] == 0  # numbered by first appearance


def test_cosine_distances_match_a_pair_loop() -> None:
    e = torch.randn(6, 4, generator=torch.Generator().manual_seed(3))
    got = cosine_distances(e)
    for a, b in itertools.product(range(6), repeat=2):
        expected = (
            0.0 if a == b else 1 - float(torch.nn.functional.cosine_similarity(e[a].double(), e[b].double(), dim=0))
        )
        assert float(got[a, b]) == pytest.approx(expected, abs=1e-9)


def test_monosemanticity_is_the_weighted_share_of_the_largest_cluster() -> None:
    assert monosemanticity(np.array([0, 0, 0]), np.array([1.0, 2.0, 3.0])) == 1.0
    assert monosemanticity(np.array([0, 1, 1]), np.array([3.0, 1.0, 1.0])) == pytest.approx(0.6)


@pytest.mark.parametrize("vmask", [True, False])
def test_top_activations_and_mass_match_a_token_loop(vmask: bool) -> None:
    model, split = tiny(vmask), tiny_split()
    acts, _, important = token_table(model, split)
    top = top_activations(model, batches(split), split.offsets, top_k=5, device=CPU)
    assert top.n_tokens == sum(LENGTHS)
    for j in range(acts.shape[1]):
        positive = sorted((float(a) for a in acts[:, j] if a > 0), reverse=True)[:5]
        got = [float(v) for v in top.values[j] if v > float("-inf")]
        assert got == pytest.approx(positive, rel=1e-5)
        for value, token in zip(top.values[j], top.tokens[j], strict=True):  # each id is the token it names
            if token >= 0:
                assert float(acts[token, j]) == pytest.approx(float(value), rel=1e-5)
        assert int(top.active[j]) == int((acts[:, j] > 0).sum())
    torch.testing.assert_close(top.mass, acts.double().sum(0), rtol=1e-5, atol=1e-6)
    if vmask:
        assert top.mass_important is not None
        torch.testing.assert_close(top.mass_important, acts[important].double().sum(0), rtol=1e-5, atol=1e-6)
    else:
        assert top.mass_important is None


def test_second_pass_returns_each_chosen_tokens_fc1_input() -> None:
    model, split = tiny(), tiny_split()
    _, inputs, _ = token_table(model, split)
    wanted = torch.tensor([0, 5, 6, 11, int(split.offsets[-1]) - 1])
    got = gather_fc1_inputs(model, batches(split, 2), split.offsets, wanted, CPU)
    torch.testing.assert_close(got, inputs[wanted], rtol=1e-5, atol=1e-5)


def test_a_neuron_that_never_activates_is_dead_with_no_cluster() -> None:
    model, split = tiny(), tiny_split()
    fc1 = model.blocks[0].fc1
    with torch.no_grad():
        fc1.weight[3] = 0.0
        fc1.bias[3] = -1.0  # ReLU(−1) = 0 on every token
    top = top_activations(model, batches(split), split.offsets, top_k=4, device=CPU)
    wanted = torch.unique(top.tokens[top.tokens >= 0])
    h = gather_fc1_inputs(model, batches(split), split.offsets, wanted, CPU)
    result = cluster_neurons(top, h, wanted, fc1.weight, threshold=0.5)
    assert result.clusters[3] == 0 and np.isnan(result.monosemanticity[3]) and result.n_examples[3] == 0
    live = np.flatnonzero(result.clusters > 0)
    assert len(live) >= 1 and (result.clusters[live] <= result.n_examples[live]).all()


def test_important_neurons_are_the_fewest_carrying_half_the_important_mass() -> None:
    mass = np.array([1.0, 5.0, 0.0, 3.0, 1.0])
    alive = np.array([True, True, False, True, True])
    assert important_neurons(mass, alive).tolist() == [False, True, False, False, False]  # 5 of 10
    assert important_neurons(mass, alive, share=0.75).tolist() == [False, True, False, True, False]
    assert not important_neurons(np.zeros(3), np.ones(3, dtype=bool)).any()
