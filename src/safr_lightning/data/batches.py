"""Tokenized splits held as one flat token tensor, batched with vectorized padding.

A split of N texts is ``tokens`` (all ids end to end) plus ``offsets`` [N + 1]; a batch is one
gather, padded to the longest text *in the batch* (never to ``max_len``). With the length-bucketing
sampler, texts of similar length share a batch, so padding stays small without per-item Python work.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import torch
from datasets import Dataset
from torch.utils.data import Sampler

from safr_lightning.data.tokenizer import PAD_ID

Batch = dict[str, torch.Tensor]


def _flat_list_column(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A list<int> column as (flat values, lengths)."""
    column = table.column(name).combine_chunks()
    lengths = column.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)
    values = column.flatten().to_numpy(zero_copy_only=False)
    return values, lengths


class TokenizedSplit(torch.utils.data.Dataset):
    """One split: ``__getitems__`` returns a whole padded batch.

    Batches are padded to their longest text, or to ``pad_to`` when set (the paper's fixed padding).

    Batch keys: ``input_ids`` [B, T] long, ``attention_mask`` [B, T] bool (True = real token),
    ``labels`` [B] long, ``index`` [B] long (position in the split), and ``rationale`` [B, T] bool
    when the split has planted rationales.
    """

    def __init__(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor,
        labels: torch.Tensor,
        rationale: torch.Tensor | None = None,
        pad_to: int | None = None,
    ) -> None:
        if (lengths < 1).any():
            raise ValueError("every text needs at least one token")
        if pad_to is not None and len(lengths) and int(lengths.max()) > pad_to:
            raise ValueError(f"a text of {int(lengths.max())} tokens does not fit pad_to={pad_to}")
        self.pad_to = pad_to
        self.tokens = tokens.long()
        self.lengths = lengths.long()
        self.offsets = torch.zeros(len(lengths) + 1, dtype=torch.long)
        torch.cumsum(self.lengths, 0, out=self.offsets[1:])
        self.labels = labels.long()
        self.rationale = None if rationale is None else rationale.bool()

    @classmethod
    def from_dataset(cls, ds: Dataset, pad_to: int | None = None) -> TokenizedSplit:
        """From a tokenized ``datasets.Dataset`` with ``input_ids``, ``label`` (and ``rationale_ids``)."""
        table = ds.with_format("arrow")[:]
        ids, lengths = _flat_list_column(table, "input_ids")
        rationale = None
        if "rationale_ids" in table.column_names:
            rationale = torch.from_numpy(_flat_list_column(table, "rationale_ids")[0].astype(np.bool_))
        labels = table.column("label").to_numpy().astype(np.int64)
        return cls(
            torch.from_numpy(ids.astype(np.int64)),
            torch.from_numpy(lengths),
            torch.from_numpy(labels),
            rationale,
            pad_to,
        )

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index: int) -> Batch:
        return self.__getitems__([index])

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        index = torch.as_tensor(indices, dtype=torch.long)
        lengths = self.lengths[index]
        width = self.pad_to or int(lengths.max())
        positions = torch.arange(width)
        mask = positions[None, :] < lengths[:, None]
        gather = (self.offsets[index][:, None] + positions[None, :]).clamp_(max=len(self.tokens) - 1)
        input_ids = torch.where(mask, self.tokens[gather], PAD_ID)
        batch = {"input_ids": input_ids, "attention_mask": mask, "labels": self.labels[index], "index": index}
        if self.rationale is not None:
            batch["rationale"] = self.rationale[gather] & mask
        return batch


def collate_prebatched(batch: Batch) -> Batch:
    """``collate_fn`` for :class:`TokenizedSplit`: the batch is already built by ``__getitems__``."""
    return batch


class LengthBucketSampler(Sampler[int]):
    """Indices ordered so that each run of ``batch_size`` holds texts of similar length.

    Per epoch: a seeded permutation is cut into pools of ``batch_size * bucket_batches`` texts,
    each pool is sorted by length and cut into batches, and the full batches are shuffled. The one
    partial batch (if any) goes last, so a plain ``BatchSampler`` regroups exactly these batches.
    The order is a function of ``(seed, epoch)`` alone, which makes resumed runs replay it.
    """

    def __init__(
        self,
        lengths: torch.Tensor,
        batch_size: int,
        *,
        bucket_batches: int = 50,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        self.lengths = lengths
        self.batch_size = batch_size
        self.pool = max(1, bucket_batches) * batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        n = len(self.lengths)
        if not self.shuffle:  # evaluation: one global sort, no randomness
            yield from torch.argsort(self.lengths, stable=True).tolist()
            return
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(n, generator=g)
        batches = []
        for start in range(0, n, self.pool):
            pool = perm[start : start + self.pool]
            pool = pool[torch.argsort(self.lengths[pool], stable=True)]
            batches.extend(pool.split(self.batch_size))
        full = [b for b in batches if len(b) == self.batch_size]
        partial = [b for b in batches if len(b) != self.batch_size]
        order = torch.randperm(len(full), generator=g).tolist()
        for i in order:
            yield from full[i].tolist()
        for b in partial:
            yield from b.tolist()


class RandomSampler(Sampler[int]):
    """Plain seeded shuffling (no bucketing), also a function of ``(seed, epoch)``."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        yield from torch.randperm(self.n, generator=g).tolist()
