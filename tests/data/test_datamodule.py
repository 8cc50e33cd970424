from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch

from safr_lightning.data.datamodule import SAFRDataModule
from safr_lightning.data.tokenizer import UNK_ID


def test_synthetic_datamodule_batches(make_cfg: Callable) -> None:
    cfg = make_cfg()
    dm = SAFRDataModule(cfg.dataset, cfg.data, seed=0)
    dm.setup("fit")
    assert {s: len(d) for s, d in dm.splits.items()} == {"train": 256, "validation": 64, "test": 64}
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape[0] == 16
    assert batch["input_ids"].shape[1] == int(batch["attention_mask"].sum(1).max())  # padded to longest
    assert batch["rationale"].any() and not (batch["rationale"] & ~batch["attention_mask"]).any()
    dm.setup("test")  # idempotent
    assert len(dm.splits["test"]) == 64


def test_vocabulary_comes_from_train_only(make_cfg: Callable) -> None:
    cfg = make_cfg()
    dm = SAFRDataModule(cfg.dataset, cfg.data, seed=0)
    dm.setup("fit")
    train_words = {w for text in dm.texts["train"]["text"] for w in text.split()}
    assert set(dm.tokenizer.get_vocab()) - {"<pad>", "<unk>"} <= train_words


def test_train_order_is_reproducible_per_seed(make_cfg: Callable) -> None:
    def first_batch(seed: int) -> torch.Tensor:
        cfg = make_cfg()
        dm = SAFRDataModule(cfg.dataset, cfg.data, seed=seed)
        dm.setup("fit")
        return next(iter(dm.train_dataloader()))["index"]

    assert torch.equal(first_batch(0), first_batch(0))
    assert not torch.equal(first_batch(0), first_batch(1))


@pytest.mark.real_data
def test_sst2_splits_and_vocabulary(make_cfg: Callable, data_dir: Path) -> None:
    cfg = make_cfg("dataset=sst2", f"dataset.local_dir={data_dir}", tiny=False)
    dm = SAFRDataModule(cfg.dataset, cfg.data, seed=0)
    dm.setup("fit")
    assert {s: len(d) for s, d in dm.splits.items()} == {"train": 6920, "validation": 872, "test": 1821}
    assert 5000 < dm.tokenizer.get_vocab_size() < 20000
    assert int(dm.splits["train"].lengths.max()) <= 128
    unk_rate = float((dm.splits["test"].tokens == UNK_ID).float().mean())
    assert 0 < unk_rate < 0.2


@pytest.mark.real_data
def test_imdb_split_is_stratified_and_breaks_are_stripped(make_cfg: Callable, data_dir: Path) -> None:
    cfg = make_cfg("dataset=imdb", f"dataset.local_dir={data_dir}", tiny=False)
    dm = SAFRDataModule(cfg.dataset, cfg.data, seed=0)
    dm.setup("fit")
    assert {s: len(d) for s, d in dm.splits.items()} == {"train": 20000, "validation": 5000, "test": 25000}
    assert float(dm.splits["validation"].labels.float().mean()) == pytest.approx(0.5, abs=0.01)
    assert int(dm.splits["train"].lengths.max()) == 256
    assert not any("<br" in w for w in dm.tokenizer.get_vocab())


def official_vocabulary(texts: list[str], min_freq: int = 2) -> set[str]:
    """The paper's build_vocab: str.split(), case kept, words seen at least min_freq times."""
    counts: dict[str, int] = {}
    for text in texts:
        for word in text.split():
            counts[word] = counts.get(word, 0) + 1
    return {w for w, c in counts.items() if c >= min_freq}


@pytest.mark.real_data
def test_paper_tokenizer_on_sst2_is_the_official_vocabulary_and_pads_to_128(make_cfg: Callable, data_dir: Path) -> None:
    cfg = make_cfg("dataset=sst2", "fidelity=paper", f"dataset.local_dir={data_dir}", tiny=False)
    dm = SAFRDataModule(cfg.dataset, cfg.data, seed=0, pad_to=128)
    dm.setup("fit")
    vocab = set(dm.tokenizer.get_vocab()) - {"<pad>", "<unk>"}
    assert vocab == official_vocabulary(dm.texts["train"]["text"])
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape == (32, 128)
    # SST-2 is lower-cased already: the exact tokenizer builds the same vocabulary.
    exact = make_cfg("dataset=sst2", f"dataset.local_dir={data_dir}", tiny=False)
    dm_exact = SAFRDataModule(exact.dataset, exact.data, seed=0)
    dm_exact.setup("fit")
    assert dm_exact.tokenizer.get_vocab() == dm.tokenizer.get_vocab()


@pytest.mark.real_data
def test_paper_imdb_split_is_each_class_head_and_keeps_case_and_breaks(make_cfg: Callable, data_dir: Path) -> None:
    cfg = make_cfg("dataset=imdb", "fidelity=paper", f"dataset.local_dir={data_dir}", tiny=False)
    dm = SAFRDataModule(cfg.dataset, cfg.data, seed=0, pad_to=256)
    dm.setup("fit")
    train, val = dm.texts["train"], dm.texts["validation"]
    assert (len(train), len(val)) == (20000, 5000)
    assert sum(train["label"]) == 10000 and sum(val["label"]) == 2500
    raw = pd.read_parquet(data_dir / "imdb" / "train.parquet")
    neg = raw[raw.label == 0].text.tolist()
    assert train["text"][:10000] == neg[:10000] and val["text"][:2500] == neg[10000:]
    vocab = set(dm.tokenizer.get_vocab())
    assert "<br" in vocab and "The" in vocab and "the" in vocab
