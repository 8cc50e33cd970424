from __future__ import annotations

import pytest
import torch
from torch.utils.data import BatchSampler

from safr_lightning.data.batches import LengthBucketSampler, RandomSampler, TokenizedSplit


def split_of(texts: list[list[int]]) -> TokenizedSplit:
    tokens = torch.tensor([t for text in texts for t in text])
    lengths = torch.tensor([len(t) for t in texts])
    return TokenizedSplit(tokens, lengths, torch.arange(len(texts)) % 2)


def test_batch_is_padded_to_longest_text_in_batch() -> None:
    texts = [[5, 6, 7], [8], [9, 10, 11, 12, 13], [14, 15]]
    ds = split_of(texts)
    batch = ds.__getitems__([1, 3, 0])
    assert batch["input_ids"].tolist() == [[8, 0, 0], [14, 15, 0], [5, 6, 7]]
    assert batch["attention_mask"].tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert batch["labels"].tolist() == [1, 1, 0]
    assert batch["index"].tolist() == [1, 3, 0]


def test_batch_equals_per_text_padding_on_random_texts() -> None:
    g = torch.Generator().manual_seed(0)
    texts = [torch.randint(2, 100, (int(n),), generator=g).tolist() for n in torch.randint(1, 20, (50,), generator=g)]
    ds = split_of(texts)
    idx = torch.randperm(50, generator=g)[:17].tolist()
    batch = ds.__getitems__(idx)
    width = max(len(texts[i]) for i in idx)
    for row, i in enumerate(idx):
        expected = texts[i] + [0] * (width - len(texts[i]))
        assert batch["input_ids"][row].tolist() == expected


def test_rationale_travels_with_tokens() -> None:
    ds = TokenizedSplit(torch.tensor([5, 6, 7, 8]), torch.tensor([3, 1]), torch.tensor([0, 1]),
                        rationale=torch.tensor([0, 1, 0, 1]))  # fmt: skip
    assert ds.__getitems__([0, 1])["rationale"].tolist() == [[False, True, False], [True, False, False]]


def test_bucket_sampler_is_a_seeded_permutation_with_similar_lengths_per_batch() -> None:
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 200, (1000,), generator=g)
    sampler = LengthBucketSampler(lengths, 32, bucket_batches=8, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(1000))
    assert list(sampler) == first  # same epoch, same order
    sampler.set_epoch(1)
    assert list(sampler) != first
    batches = list(BatchSampler(LengthBucketSampler(lengths, 32, bucket_batches=8, seed=3), 32, False))
    spread = [int(lengths[b].max() - lengths[b].min()) for b in batches]
    random_spread = [int(lengths[b].max() - lengths[b].min()) for b in torch.randperm(1000).split(32)]
    assert sum(spread) < 0.25 * sum(random_spread)
    assert [len(b) for b in batches[:-1]] == [32] * 31 and len(batches[-1]) == 1000 - 31 * 32


def test_eval_order_is_sorted_by_length_and_deterministic() -> None:
    lengths = torch.tensor([5, 1, 3, 1, 9])
    order = list(LengthBucketSampler(lengths, 2, shuffle=False))
    assert order == [1, 3, 2, 0, 4]


def test_random_sampler_depends_on_seed_and_epoch() -> None:
    a, b = RandomSampler(100, seed=0), RandomSampler(100, seed=1)
    assert list(a) != list(b) and sorted(a) == list(range(100))
    before = list(a)
    a.set_epoch(2)
    assert list(a) != before


def test_fixed_padding_pads_every_batch_to_pad_to() -> None:
    texts = [[5, 6, 7], [8], [9, 10]]
    ds = TokenizedSplit(torch.tensor([t for x in texts for t in x]), torch.tensor([3, 1, 2]), torch.zeros(3), pad_to=6)
    batch = ds.__getitems__([1, 2])
    assert batch["input_ids"].tolist() == [[8, 0, 0, 0, 0, 0], [9, 10, 0, 0, 0, 0]]
    assert batch["attention_mask"].sum(1).tolist() == [1, 2]


def test_fixed_padding_refuses_a_text_longer_than_pad_to() -> None:
    with pytest.raises(ValueError, match="does not fit pad_to=2"):
        TokenizedSplit(torch.tensor([5, 6, 7]), torch.tensor([3]), torch.zeros(1), pad_to=2)
