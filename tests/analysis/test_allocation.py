from __future__ import annotations

import numpy as np
import pytest
import torch

from safr_lightning.analysis.allocation import Reservoir, group_statistics, profile_texts, sample_batches, token_views
from safr_lightning.data.batches import TokenizedSplit
from safr_lightning.errors import SAFRError
from safr_lightning.metrics.superposition import capacity, interference, polysemanticity
from safr_lightning.module import SAFRModule
from tests.reference import correlated_pairs as ref_correlated_pairs
from tests.reference import important_tokens as ref_important_tokens

TEXTS = ["good kaba naba taba", "bad", "Zorbly awful fuda kida sefa dufa leba , ugh"]


def test_token_views_recover_words_as_written_and_mark_unknown(tiny_module: SAFRModule) -> None:
    (view,) = token_views(tiny_module.tokenizer, ["GOOD  Zorbly\tbad"])
    assert view.words == ["GOOD", "Zorbly", "bad"]  # original casing, whatever the spacing
    assert view.unknown == [False, True, False]
    assert not view.truncated


def test_token_views_say_when_a_text_was_truncated(tiny_module: SAFRModule) -> None:
    max_len = tiny_module.hparams.max_len
    (view,) = token_views(tiny_module.tokenizer, [" ".join(["good"] * (max_len + 5))])
    assert view.truncated and len(view.words) == max_len


def test_profile_values_are_the_metric_functions_on_the_trace(tiny_module: SAFRModule) -> None:
    profiles = profile_texts(tiny_module, TEXTS)
    batch = tiny_module.encode(TEXTS)
    with torch.no_grad():
        out = tiny_module.model(batch["input_ids"], batch["attention_mask"], return_trace=True)
    mask = batch["attention_mask"]
    for b, profile in enumerate(profiles):
        n = int(mask[b].sum())
        assert len(profile.tokens.words) == n
        for layer in ("embedding", "vmask", "attn_out", "fc1", "fc2"):
            np.testing.assert_allclose(profile.capacity[layer], capacity(out.trace[layer], mask)[b, :n], rtol=1e-6)
            np.testing.assert_allclose(
                profile.interference[layer], interference(out.trace[layer], mask)[b, :n, :n], rtol=1e-5
            )
        np.testing.assert_allclose(profile.keep, out.trace["vmask_prob"][b, :n], rtol=1e-6)
        np.testing.assert_allclose(profile.probs, out.logits[b].softmax(-1), rtol=1e-5)
        assert profile.prediction == int(out.logits[b].argmax())
        assert profile.attention_received.sum() == pytest.approx(1.0, abs=1e-5)
    # Centred FC1 interference: signed, and each token's row sums to 0 (the mean is removed).
    graph = profiles[2].graph_interference
    assert (graph < 0).any() and (graph > 0).any()
    np.testing.assert_allclose(graph.sum(-1), 0, atol=1e-3 * np.abs(graph).max())


def test_profile_restores_training_mode(tiny_module: SAFRModule) -> None:
    tiny_module.train()
    try:
        profile_texts(tiny_module, ["good"])
        assert tiny_module.training
    finally:
        tiny_module.eval()


def test_profile_of_no_text_is_an_error(tiny_module: SAFRModule) -> None:
    with pytest.raises(SAFRError, match="no texts"):
        profile_texts(tiny_module, [])


def _batches(module: SAFRModule, texts: list[str], size: int) -> list[dict[str, torch.Tensor]]:
    return [module.encode(texts[i : i + size]) for i in range(0, len(texts), size)]


def _reference_groups(module: SAFRModule, texts: list[str], k: float) -> dict[str, list[float]]:
    """One text at a time through the model, groups picked by the loop references."""
    groups: dict[str, list[float]] = {k: [] for k in ("ci", "cr", "pi", "pr", "ic", "io")}
    for text in texts:
        batch = module.encode([text])
        mask = batch["attention_mask"]
        with torch.no_grad():
            trace = module.model(batch["input_ids"], mask, return_trace=True).trace
        h = trace["fc1"]
        important = ref_important_tokens(trace["vmask_prob"], mask, k)[0]
        correlated = ref_correlated_pairs(trace["attention"], mask, k)[0]
        cap, poly, inter = capacity(h, mask)[0], polysemanticity(h, mask)[0], interference(h, mask)[0]
        n = int(mask.sum())
        for i in range(n):
            groups["ci" if important[i] else "cr"].append(float(cap[i]))
            groups["pi" if important[i] else "pr"].append(float(poly[i]))
            for j in range(i + 1, n):
                groups["ic" if correlated[i, j] else "io"].append(float(inter[i, j]))
    return groups


def test_group_statistics_match_a_text_by_text_loop(tiny_module: SAFRModule) -> None:
    texts = [*TEXTS, "great kaba", "dull naba taba kaba good bad", "a"]
    stats = group_statistics(tiny_module, _batches(tiny_module, texts, 3), k=30)
    ref = _reference_groups(tiny_module, texts, 30)
    assert stats.n_texts == len(texts)
    pairs = {
        "ci": stats.capacity_important, "cr": stats.capacity_rest,
        "pi": stats.polysemanticity_important, "pr": stats.polysemanticity_rest,
        "ic": stats.interference_correlated, "io": stats.interference_other,
    }  # fmt: skip
    for key, got in pairs.items():
        np.testing.assert_allclose(np.sort(got), np.sort(ref[key]), rtol=1e-4, atol=1e-5, err_msg=key)
    assert stats.counts["capacity_important"] == len(ref["ci"])


def test_group_statistics_sample_at_most_max_samples_and_stop_at_max_texts(tiny_module: SAFRModule) -> None:
    texts = [" ".join(["good", "kaba", "naba", "taba", "bad"] * 3)] * 10
    stats = group_statistics(tiny_module, _batches(tiny_module, texts, 4), max_texts=6, max_samples=20)
    assert stats.n_texts == 6
    assert stats.counts["interference_other"] > 20 and len(stats.interference_other) == 20
    assert stats.counts["capacity_important"] == 6 * 5  # 30% of 15 tokens, each of 6 texts


def test_group_statistics_need_vmask(tiny_module: SAFRModule, tiny_baseline: SAFRModule) -> None:
    with pytest.raises(SAFRError, match="VMASK"):
        group_statistics(tiny_baseline, _batches(tiny_module, TEXTS, 2))


def test_reservoir_is_a_uniform_sample_of_everything_offered() -> None:
    reservoir = Reservoir(1000, torch.Generator().manual_seed(0))
    for start in range(0, 10_000, 700):  # uneven batches
        reservoir.add(torch.arange(start, min(start + 700, 10_000), dtype=torch.float32))
    sample = reservoir.numpy()
    assert reservoir.seen == 10_000 and len(sample) == 1000 and len(np.unique(sample)) == 1000
    # A uniform sample of 0..9999 has each decile near 100 values; a biased one (first or last
    # batches kept) would not.
    counts = np.histogram(sample, bins=10, range=(0, 10_000))[0]
    assert counts.min() > 60 and counts.max() < 140


def test_sample_batches_draw_a_seeded_sample_not_the_shortest_texts() -> None:
    lengths = torch.arange(1, 41)  # text k has k + 1 tokens
    split = TokenizedSplit(torch.ones(int(lengths.sum()), dtype=torch.long), lengths, torch.zeros(40))
    everything = [b["index"] for b in sample_batches(split, batch_size=16)]
    assert sorted(torch.cat(everything).tolist()) == list(range(40))
    sample = torch.cat([b["index"] for b in sample_batches(split, batch_size=4, max_texts=10, seed=3)])
    again = torch.cat([b["index"] for b in sample_batches(split, batch_size=4, max_texts=10, seed=3)])
    assert len(set(sample.tolist())) == 10 and torch.equal(sample, again)
    assert sample.tolist() != list(range(10))  # the length-sorted loader's first 10 would be these
    assert torch.equal(sample, sample.sort().values)  # sorted by length within the sample: little padding
