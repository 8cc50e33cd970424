"""``SAFRDataModule``: SST-2, IMDB, the synthetic task or a local directory, tokenized and batched."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import pyarrow.compute as pc
import torch
from datasets import Dataset, DatasetDict
from tokenizers import Tokenizer
from torch.utils.data import DataLoader

from safr_lightning.data.batches import LengthBucketSampler, RandomSampler, TokenizedSplit, collate_prebatched
from safr_lightning.data.sources import SPLITS, load_raw_splits
from safr_lightning.data.tokenizer import build_tokenizer, encode_texts
from safr_lightning.errors import DataError

log = logging.getLogger(__name__)


def _tokenize(batch: dict[str, list], tokenizer: Tokenizer) -> dict[str, list]:
    """``datasets.map`` function (module level, so its fingerprint and the cache are stable)."""
    ids = encode_texts(tokenizer, batch["text"])
    out: dict[str, list] = {"input_ids": ids}
    if "rationale" in batch:  # word-aligned marks, cut to the (truncated) token count
        out["rationale_ids"] = [marks[: len(row)] for marks, row in zip(batch["rationale"], ids, strict=True)]
    return out


class SAFRDataModule(L.LightningDataModule):
    """Loads, checks, tokenizes (cached) and batches one dataset.

    ``setup`` is idempotent: the first call builds the vocabulary from the training split and
    tokenizes every split; ``tokenizer`` is then available to build the model.
    """

    def __init__(
        self,
        dataset: Any,
        data: Any,
        seed: int = 0,
        tokenizer: Tokenizer | None = None,
        pad_to: int | None = None,
        data_dir: str | None = None,
    ) -> None:
        """``pad_to``: pad every batch to this length (the paper's fixed padding); None pads to the longest.
        ``data_dir``: ``paths.data_dir``, the root of the offline data copies (None: ``$SAFR_DATA_DIR``)."""
        super().__init__()
        self.data_dir = data_dir
        self.dataset_cfg = dataset
        self.data_cfg = data
        self.seed = seed
        self.pad_to = pad_to
        self.tokenizer: Tokenizer | None = tokenizer
        self.splits: dict[str, TokenizedSplit] = {}
        self.texts: dict[str, Dataset] = {}

    @property
    def num_classes(self) -> int:
        return int(self.dataset_cfg.num_classes)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        cfg = self.dataset_cfg
        raw: DatasetDict = load_raw_splits(cfg, self.data_cfg.cache_dir, self.data_dir)
        limits = {"train": cfg.limit_train, "validation": cfg.limit_val, "test": cfg.limit_test}
        for split in SPLITS:
            ds = raw[split]
            if limits[split] is not None and limits[split] < len(ds):
                ds = ds.select(range(limits[split]))
            self.texts[split] = ds
        if self.tokenizer is None:
            self.tokenizer = build_tokenizer(
                self.texts["train"]["text"],
                min_freq=cfg.min_freq,
                lowercase=cfg.lowercase,
                strip_html_breaks=cfg.strip_html_breaks,
                max_len=cfg.max_len,
            )
        for split in SPLITS:
            tokenized = self.texts[split].map(
                _tokenize,
                batched=True,
                batch_size=2000,
                fn_kwargs={"tokenizer": self.tokenizer},
                remove_columns=[c for c in self.texts[split].column_names if c != "label"],
                desc=f"tokenize {split}",
            )
            # Texts made only of characters the normalizer removes would have no tokens.
            lengths = pc.list_value_length(tokenized.with_format("arrow")[:].column("input_ids"))
            empty = pc.sum(pc.equal(lengths, 0)).as_py() or 0
            if empty:
                raise DataError(f"{split} split: {empty} text(s) have no tokens after normalization")
            self.splits[split] = TokenizedSplit.from_dataset(tokenized, pad_to=self.pad_to)
        sizes = ", ".join(f"{s} {len(d)}" for s, d in self.splits.items())
        log.info("%s: %s; vocabulary %d", cfg.name, sizes, self.tokenizer.get_vocab_size())

    def _loader(self, split: str, train: bool) -> DataLoader:
        data = self.data_cfg
        ds = self.splits[split]
        batch_size = data.batch_size if train else data.eval_batch_size
        if train and not data.bucketing:
            sampler: Any = RandomSampler(len(ds), seed=self.seed)
        else:
            sampler = LengthBucketSampler(
                ds.lengths, batch_size, bucket_batches=data.bucket_batches, shuffle=train, seed=self.seed
            )
        return DataLoader(
            ds,
            batch_size=batch_size,
            sampler=sampler,
            collate_fn=collate_prebatched,
            num_workers=data.num_workers,
            pin_memory=data.pin_memory,
            persistent_workers=data.persistent_workers and data.num_workers > 0,
            # Its own generator: creating an iterator must not draw from the global RNG, which the
            # module reseeds per epoch (a resumed run creates its first iterator at another moment).
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    def loader(self, split: str) -> DataLoader:
        """An evaluation loader (length-sorted, not shuffled) over any split."""
        return self._loader(split, train=False)
