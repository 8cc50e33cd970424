from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from safr_lightning.config import DatasetConfig
from safr_lightning.data import sources
from safr_lightning.data.sources import load_raw_splits, local_dir_for
from safr_lightning.errors import DataError


def cfg_for(directory: Path, **kw: object) -> DatasetConfig:
    return OmegaConf.structured(DatasetConfig(name="local", local_dir=str(directory), **kw))


def write(directory: Path, split: str, rows: list[tuple[str, int]], fmt: str = "parquet") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows, columns=["text", "label"])
    if fmt == "parquet":
        df.to_parquet(directory / f"{split}.parquet")
    elif fmt == "csv":
        df.to_csv(directory / f"{split}.csv", index=False)
    else:
        df.to_json(directory / f"{split}.jsonl", orient="records", lines=True)


ROWS = [(f"text number {i} {'good' if i % 2 else 'bad'}", i % 2) for i in range(40)]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_local_directory_in_any_format(tmp_path: Path, fmt: str) -> None:
    for split in ("train", "validation", "test"):
        write(tmp_path, split, ROWS, fmt)
    splits = load_raw_splits(cfg_for(tmp_path), str(tmp_path / "cache"))
    assert {s: len(d) for s, d in splits.items()} == {"train": 40, "validation": 40, "test": 40}
    assert splits["train"].column_names == ["text", "label"]


def test_missing_validation_is_carved_stratified_and_seeded(tmp_path: Path) -> None:
    write(tmp_path, "train", ROWS)
    write(tmp_path, "test", ROWS[:10])
    a = load_raw_splits(cfg_for(tmp_path, val_size=0.25), str(tmp_path / "c"))
    b = load_raw_splits(cfg_for(tmp_path, val_size=0.25), str(tmp_path / "c"))
    assert (len(a["train"]), len(a["validation"])) == (30, 10)
    assert sorted(a["validation"]["label"]) == [0] * 5 + [1] * 5
    assert a["validation"]["text"] == b["validation"]["text"]
    assert not set(a["validation"]["text"]) & set(a["train"]["text"])
    c = load_raw_splits(cfg_for(tmp_path, val_size=0.25, split_seed=1), str(tmp_path / "c"))
    assert c["validation"]["text"] != a["validation"]["text"]


def test_empty_texts_are_dropped(tmp_path: Path) -> None:
    write(tmp_path, "train", [*ROWS, ("   ", 1), ("", 0)])
    write(tmp_path, "validation", ROWS)
    write(tmp_path, "test", ROWS)
    assert len(load_raw_splits(cfg_for(tmp_path), str(tmp_path / "c"))["train"]) == 40


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("good", 0), ("bad", 2)], "outside the classes"),
        ([("", 0), (" ", 1)], "empty or whitespace-only"),
    ],
)
def test_bad_rows_raise_one_clear_error(tmp_path: Path, rows: list, message: str) -> None:
    write(tmp_path, "train", rows)
    write(tmp_path, "test", ROWS)
    with pytest.raises(DataError, match=message):
        load_raw_splits(cfg_for(tmp_path), str(tmp_path / "c"))


def test_missing_split_and_missing_column(tmp_path: Path) -> None:
    write(tmp_path, "train", ROWS)
    with pytest.raises(DataError, match="missing test split"):
        load_raw_splits(cfg_for(tmp_path), str(tmp_path / "c"))
    pd.DataFrame({"sentence": ["a"], "label": [0]}).to_parquet(tmp_path / "test.parquet")
    with pytest.raises(DataError, match="missing column"):
        load_raw_splits(cfg_for(tmp_path), str(tmp_path / "c"))


def test_unreachable_hub_names_the_offline_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAFR_DATA_DIR", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(sources, "_hub_reachable", lambda timeout=5.0: False)
    cfg = OmegaConf.structured(DatasetConfig(name="sst2", hub_id="SetFit/sst2"))
    with pytest.raises(DataError, match="SAFR_DATA_DIR"):
        load_raw_splits(cfg)


def test_data_dir_env_points_at_named_dataset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for split in ("train", "validation", "test"):
        write(tmp_path / "sst2", split, ROWS)
    monkeypatch.setenv("SAFR_DATA_DIR", str(tmp_path))
    cfg = OmegaConf.structured(DatasetConfig(name="sst2", hub_id="SetFit/sst2"))
    assert len(load_raw_splits(cfg, str(tmp_path / "c"))["test"]) == 40


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        (
            b"PAR1 not a parquet file",
            ".parquet",
            r"could not read .*train.parquet: Parquet magic bytes not found",
        ),
        (b"", ".csv", r"train.csv is empty \(0 bytes\)"),
        (b'text,label\n"unterminated,1\n', ".csv", r"could not read .*train.csv: Error tokenizing data"),
    ],
)
def test_unreadable_files_are_named_in_one_line(tmp_path: Path, content: bytes, suffix: str, message: str) -> None:
    (tmp_path / f"train{suffix}").write_bytes(content)
    write(tmp_path, "test", ROWS)
    with pytest.raises(DataError, match=message) as error:
        load_raw_splits(cfg_for(tmp_path), str(tmp_path / "c"))
    assert "\n" not in str(error.value)


def test_a_split_without_rows_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "train", ROWS)
    pd.DataFrame({"text": pd.Series([], dtype=str), "label": pd.Series([], dtype=int)}).to_parquet(
        tmp_path / "test.parquet"
    )
    with pytest.raises(DataError, match=r"test.parquet has no rows"):
        load_raw_splits(cfg_for(tmp_path), str(tmp_path / "c"))
    (tmp_path / "test.parquet").unlink()
    write(tmp_path, "test", [], fmt="jsonl")
    (tmp_path / "test.jsonl").write_text("\n")
    with pytest.raises(DataError, match=r"test.jsonl"):
        load_raw_splits(cfg_for(tmp_path), str(tmp_path / "c"))


def test_missing_data_dir_names_its_origin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SAFR_DATA_DIR", str(tmp_path / "nope"))
    cfg = OmegaConf.structured(DatasetConfig(name="sst2", hub_id="SetFit/sst2"))
    with pytest.raises(DataError, match=rf"{tmp_path}/nope/sst2 does not exist \(SAFR_DATA_DIR={tmp_path}/nope\)"):
        load_raw_splits(cfg)


def test_dropped_empty_texts_are_counted_in_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path, "train", [*ROWS, ("   ", 1), ("", 0), ("\t\n", 1)])
    write(tmp_path, "test", ROWS)
    with caplog.at_level("WARNING", logger="safr_lightning.data.sources"):
        load_raw_splits(cfg_for(tmp_path), str(tmp_path / "c"))
    assert "train.parquet: dropped 3 empty or whitespace-only text(s) of 43" in caplog.text


def test_per_class_head_carve_keeps_each_class_head_in_train(tmp_path: Path) -> None:
    """The paper's IMDB split: per class, the first examples in file order train, the rest validate."""
    rows = [(f"neg {i}", 0) for i in range(12)] + [(f"pos {i}", 1) for i in range(8)]
    write(tmp_path, "train", rows)
    write(tmp_path, "test", rows[:4])
    splits = load_raw_splits(cfg_for(tmp_path, val_size=5, carve="per_class_head"), str(tmp_path / "c"))
    assert splits["train"]["text"] == [f"neg {i}" for i in range(9)] + [f"pos {i}" for i in range(6)]
    assert splits["validation"]["text"] == ["neg 9", "neg 10", "neg 11", "pos 6", "pos 7"]
    fraction = load_raw_splits(cfg_for(tmp_path, val_size=0.25, carve="per_class_head"), str(tmp_path / "c"))
    assert fraction["validation"]["text"] == splits["validation"]["text"]


def test_per_class_head_carve_that_leaves_nothing_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "train", ROWS)
    write(tmp_path, "test", ROWS[:4])
    with pytest.raises(DataError, match="leaves no training or no validation"):
        load_raw_splits(cfg_for(tmp_path, val_size=40, carve="per_class_head"), str(tmp_path / "c"))


def test_csv_texts_that_look_like_missing_values_are_texts(tmp_path: Path) -> None:
    """pandas reads "NA", "null", "None" as missing by default; here they are reviews like any other."""
    rows = [("NA", 0), ("null", 1), ("None", 0), ("n/a", 1), *ROWS]
    body = "text,label\n" + "".join(f"{t},{y}\n" for t, y in rows)
    for split in ("train", "validation", "test"):
        (tmp_path / f"{split}.csv").write_text(body, encoding="utf-8-sig")  # with a BOM, as Excel writes
    splits = load_raw_splits(cfg_for(tmp_path), str(tmp_path / "cache"))
    assert splits["train"].column_names == ["text", "label"]
    assert splits["train"]["text"][:4] == ["NA", "null", "None", "n/a"]


def test_a_validation_fraction_that_leaves_no_training_example_is_one_line(tmp_path: Path) -> None:
    write(tmp_path, "train", ROWS)
    write(tmp_path, "test", ROWS[:10])
    with pytest.raises(DataError, match=r"dataset.val_size=0.999 cannot split train \(40 examples\)"):
        load_raw_splits(cfg_for(tmp_path, val_size=0.999), str(tmp_path / "c"))


def test_a_data_dir_that_is_a_file_and_a_csv_without_rows_are_said_as_such(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(DataError, match=r"data directory .*afile is a file, not a directory"):
        load_raw_splits(cfg_for(afile), str(tmp_path / "c"))
    write(tmp_path / "d", "train", ROWS, "csv")
    (tmp_path / "d" / "test.csv").write_text("text,label\n")
    with pytest.raises(DataError, match=r"test.csv: it holds no rows"):
        load_raw_splits(cfg_for(tmp_path / "d"), str(tmp_path / "c"))


def test_a_missing_local_dir_is_said_in_dataset_local_dirs_words(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_raw_splits(cfg_for(tmp_path / "mine"), str(tmp_path / "c"))
    message = str(caught.value)
    assert "set dataset.local_dir to a directory holding" in message and "SAFR_DATA_DIR" not in message


def test_string_labels_are_mapped_by_label_map(tmp_path: Path) -> None:
    rows = [(f"text {i}", "pos" if i % 2 else "neg") for i in range(20)]
    for split in ("train", "test"):
        pd.DataFrame(rows, columns=["text", "label"]).to_csv(tmp_path / f"{split}.csv", index=False)
    with pytest.raises(DataError, match=r"column 'label' must hold integers"):  # without a map: said, not guessed
        load_raw_splits(cfg_for(tmp_path), str(tmp_path / "c"))
    splits = load_raw_splits(cfg_for(tmp_path, label_map=["neg", "pos"]), str(tmp_path / "c"))
    assert sorted(set(splits["test"]["label"])) == [0, 1]
    assert splits["test"]["label"][:2] == [0, 1]
    with pytest.raises(DataError, match=r"label\(s\) 'pos' not in dataset.label_map \(neg, positive\)"):
        load_raw_splits(cfg_for(tmp_path, label_map=["neg", "positive"]), str(tmp_path / "c"))


def test_paths_data_dir_is_the_data_root_and_names_itself_in_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFR_DATA_DIR", str(tmp_path / "from_env"))
    cfg = DatasetConfig(name="sst2")
    assert local_dir_for(cfg) == tmp_path / "from_env" / "sst2"
    assert local_dir_for(cfg, str(tmp_path / "from_paths")) == tmp_path / "from_paths" / "sst2"
    assert (
        local_dir_for(DatasetConfig(name="sst2", local_dir=str(tmp_path / "mine")), str(tmp_path)) == tmp_path / "mine"
    )
    with pytest.raises(
        DataError, match=rf"{tmp_path}/from_paths/sst2 does not exist \(paths.data_dir={tmp_path}/from_paths\)"
    ):
        load_raw_splits(cfg, data_dir=str(tmp_path / "from_paths"))
