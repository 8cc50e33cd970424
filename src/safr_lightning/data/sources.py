"""Raw text/label splits from the Hugging Face Hub, a local directory, or the synthetic generator.

Everything goes through ``datasets`` (``load_dataset`` for the hub and for local
parquet/csv/jsonl files), so downloads and conversions are cached the usual way. Every split is
checked here, once: the columns exist, texts are strings, labels are integers inside the classes,
and empty texts are dropped (with a count in the log). Whatever is wrong is raised as one
:class:`~safr_lightning.errors.DataError` sentence naming the file and the fix.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datasets import ClassLabel, Dataset, DatasetDict, load_dataset
from datasets import config as datasets_config
from datasets.utils.logging import disable_progress_bar

from safr_lightning.data import synthetic
from safr_lightning.errors import DataError

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
# file suffix -> `datasets` builder
FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}
DATA_DIR_ENV = "SAFR_DATA_DIR"


def data_root(data_dir: str | None = None) -> tuple[str | None, str]:
    """The root holding ``<name>/train.parquet``... and how it was named (for messages).

    ``paths.data_dir`` (``data_dir``) when given, else ``$SAFR_DATA_DIR`` (the config's default
    reads it too), else None: the hub.
    """
    env = os.environ.get(DATA_DIR_ENV)
    if data_dir and data_dir != env:
        return data_dir, f"paths.data_dir={data_dir}"
    return env or None, f"{DATA_DIR_ENV}={env}"


def local_dir_for(cfg: Any, data_dir: str | None = None) -> Path | None:
    """Where the offline copy of ``cfg.name`` lives, or None to use the hub.

    ``dataset.local_dir`` wins over ``paths.data_dir`` / ``$SAFR_DATA_DIR`` (:func:`data_root`).
    ``local_dir`` may point at the dataset's own directory (holding ``train.parquet``...) or at a
    root holding ``<name>/train.parquet``; the data root always holds ``<name>/``.
    """
    if cfg.local_dir:
        root = Path(os.path.expanduser(str(cfg.local_dir)))
        return root / cfg.name if (root / cfg.name).is_dir() and not _has_split_files(root) else root
    root_dir, _ = data_root(data_dir)
    if root_dir and cfg.name != "local":
        return Path(os.path.expanduser(root_dir)) / cfg.name
    return None


def _has_split_files(directory: Path) -> bool:
    return any((directory / f"train{suffix}").is_file() for suffix in FORMATS)


def find_split_file(directory: Path, split: str) -> Path | None:
    found = [directory / f"{split}{suffix}" for suffix in FORMATS if (directory / f"{split}{suffix}").is_file()]
    if len(found) > 1:
        raise DataError(
            f"{directory} holds several files for split '{split}' ({', '.join(p.name for p in found)}); keep one"
        )
    return found[0] if found else None


def data_fingerprint(cfg: Any, data_dir: str | None = None) -> dict[str, str] | None:
    """``{split: sha256 of its file}`` for data read from local files; None for the hub and synthetic.

    What a run was trained and tested on, whatever directory the files sit in (``dataset.local_dir``
    may change between a run and its resume).
    """
    if cfg.name == "synthetic":
        return None
    directory = local_dir_for(cfg, data_dir)
    if directory is None or not directory.is_dir():
        return None
    digests = {}
    for split in SPLITS:
        path = find_split_file(directory, split)
        if path is not None:
            with path.open("rb") as handle:
                digests[split] = hashlib.file_digest(handle, "sha256").hexdigest()[:16]
    return digests


def load_raw_splits(cfg: Any, cache_dir: str | None = None, data_dir: str | None = None) -> DatasetDict:
    """``train``/``validation``/``test`` with columns ``text`` (str) and ``label`` (int).

    Synthetic splits also carry ``rationale`` (1 per planted word).
    """
    disable_progress_bar()
    if cfg.name == "synthetic":
        generated = synthetic.generate(cfg.synthetic)
        splits = {name: (Dataset.from_dict(columns), f"synthetic {name}") for name, columns in generated.items()}
    else:
        directory = local_dir_for(cfg, data_dir)
        if directory is not None:
            origin = f"dataset.local_dir={cfg.local_dir}" if cfg.local_dir else data_root(data_dir)[1]
            splits = _load_local(directory, cache_dir, origin)
        elif cfg.name == "local":
            raise DataError(
                "dataset=local needs dataset.local_dir=DIR (a directory with train/test .parquet/.csv/.jsonl)"
            )
        else:
            splits = _load_hub(cfg, cache_dir)
    label_map = {str(name): i for i, name in enumerate(cfg.get("label_map") or [])}
    if label_map:
        splits = {name: (map_labels(ds, label_map, source), source) for name, (ds, source) in splits.items()}
    checked = {name: check_split(ds, cfg.num_classes, source) for name, (ds, source) in splits.items()}
    if "validation" not in checked or cfg.carve_validation:
        carve = carve_per_class_head if cfg.get("carve", "stratified") == "per_class_head" else carve_validation
        checked["train"], checked["validation"] = carve(checked["train"], cfg.val_size, cfg.split_seed)
    return DatasetDict({name: checked[name] for name in SPLITS})


Sources = dict[str, tuple[Dataset, str]]  # split -> (rows, where they came from, for messages)


def _load_local(directory: Path, cache_dir: str | None, origin: str = "") -> Sources:
    if not directory.is_dir():
        state = "is a file, not a directory" if directory.exists() else "does not exist"
        if origin.startswith("dataset.local_dir"):  # the user's own data: SAFR_DATA_DIR plays no part
            fix = "set dataset.local_dir to a directory holding {train,validation,test}.{parquet,csv,jsonl}"
        else:
            fix = f"set {DATA_DIR_ENV} to a directory holding <name>/{{train,validation,test}}.parquet"
        raise DataError(f"data directory {directory} {state} ({origin}); {fix}")
    splits: Sources = {}
    for split in SPLITS:
        path = find_split_file(directory, split)
        if path is None:
            if split == "validation":
                continue
            raise DataError(f"missing {split} split: no {split}.parquet, {split}.csv or {split}.jsonl in {directory}")
        _check_readable(path)
        try:
            with _quiet_local_reader():
                reader, options = FORMATS[path.suffix], _reader_options(path)
                ds = load_dataset(reader, data_files=str(path), split="train", cache_dir=cache_dir, **options)
        except Exception as exc:  # any reader failure is the file's fault, said in one line
            raise DataError(f"could not read {path}: {_root_reason(exc)}") from exc
        splits[split] = (ds, str(path))
    return splits


def _reader_options(path: Path) -> dict[str, Any]:
    """CSV: a text "NA", "null" or "None" is that text, not a missing value; a BOM is not part of it."""
    if FORMATS[path.suffix] != "csv":
        return {}
    return {"keep_default_na": False, "na_values": [], "encoding": "utf-8-sig"}


@contextmanager
def _quiet_local_reader() -> Iterator[None]:
    """``load_dataset`` on local files, without its side channels.

    ``datasets`` pings S3 to count uses of its parquet/csv/json readers on every load (unless
    ``HF_UPDATE_DOWNLOAD_COUNTS`` says otherwise): a local copy must not touch the network. It also
    logs reader failures itself over several lines; the DataError says it in one.
    """
    datasets_log = logging.getLogger("datasets")
    level, count = datasets_log.level, datasets_config.HF_UPDATE_DOWNLOAD_COUNTS
    datasets_log.setLevel(logging.CRITICAL)
    if "HF_UPDATE_DOWNLOAD_COUNTS" not in os.environ:  # an explicit opt-in is the user's call
        datasets_config.HF_UPDATE_DOWNLOAD_COUNTS = False
    try:
        yield
    finally:
        datasets_log.setLevel(level)
        datasets_config.HF_UPDATE_DOWNLOAD_COUNTS = count


def _check_readable(path: Path) -> None:
    """Fail early, in words, on what the ``datasets`` readers report obscurely (or not at all)."""
    try:
        if path.stat().st_size == 0:
            raise DataError(f"{path} is empty (0 bytes)")
        with path.open("rb"):
            pass
        if path.suffix == ".parquet":
            rows = pq.read_metadata(path).num_rows
            if rows == 0:
                raise DataError(f"{path} has no rows")
    except DataError:
        raise
    except Exception as exc:  # permissions, a corrupt footer, ...
        raise DataError(f"could not read {path}: {_root_reason(exc)}") from exc


def _root_reason(exc: BaseException) -> str:
    """The first line of the innermost cause: ``datasets`` wraps the reader's own message."""
    while exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    text = str(exc).strip()
    if "corresponds to no data" in text:  # `datasets`' words for a file with a header and no rows
        return "it holds no rows"
    return (text.splitlines()[0][:300] if text else "") or type(exc).__name__


def _hub_offline_mode() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _hub_reachable(timeout: float = 5.0) -> bool:
    """Can a TCP connection to the hub endpoint be opened (DNS included) within ``timeout``?"""
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


HUB_SPLITS = {"train": "train", "validation": "validation", "test": "test"}


def _load_hub(cfg: Any, cache_dir: str | None) -> Sources:
    if not cfg.hub_id:
        raise DataError(f"dataset '{cfg.name}' has no hub_id; set {DATA_DIR_ENV} or dataset.local_dir")
    fix = (
        f"for an offline copy set {DATA_DIR_ENV}=DIR (with {cfg.name}/train.parquet, test.parquet...) "
        "or dataset.local_dir=DIR"
    )
    # Without a network, huggingface_hub retries for half a minute per file; one probe of the
    # endpoint answers in seconds. HF_HUB_OFFLINE=1 skips it and reads the local HF cache.
    if not _hub_offline_mode() and not _hub_reachable():
        raise DataError(f"cannot reach the Hugging Face Hub to download '{cfg.hub_id}'; {fix}")
    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    hub_log.setLevel(logging.ERROR)  # its retry warnings would bury the one line that matters
    try:
        loaded = load_dataset(cfg.hub_id, cfg.hub_config, cache_dir=cache_dir)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise DataError(f"could not load '{cfg.hub_id}' from the Hugging Face Hub ({reason}); {fix}") from exc
    finally:
        hub_log.setLevel(level)
    splits: Sources = {
        split: (loaded[hub_split], f"{cfg.hub_id}[{hub_split}]")
        for split, hub_split in HUB_SPLITS.items()
        if hub_split in loaded
    }
    if "train" not in splits or "test" not in splits:
        raise DataError(f"'{cfg.hub_id}' has no train/test splits (found {list(loaded)})")
    return splits


def map_labels(ds: Dataset, label_map: dict[str, int], source: str) -> Dataset:
    """String labels -> class ids by ``dataset.label_map``; one line naming a label it does not hold."""
    if "label" not in ds.column_names:
        return ds  # check_split names the missing column
    labels = [str(v) for v in ds.with_format("arrow")[:].column("label").to_pylist()]
    unknown = sorted(set(labels) - set(label_map))
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:5])
        raise DataError(f"{source}: label(s) {shown} not in dataset.label_map ({', '.join(label_map)})")
    return ds.remove_columns("label").add_column("label", [int(label_map[v]) for v in labels])


def check_split(ds: Dataset, num_classes: int, source: str) -> Dataset:
    """Validate columns, types and labels of one split; drop empty texts; keep text/label(/rationale)."""
    missing = [c for c in ("text", "label") if c not in ds.column_names]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(missing)} (found {', '.join(ds.column_names)}); "
            "every split needs a text (string) and a label (integer) column"
        )
    if len(ds) == 0:
        raise DataError(f"{source}: no rows")
    table = ds.with_format("arrow")[:]
    text, label = table.column("text"), table.column("label")
    if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)):
        raise DataError(f"{source}: column 'text' must hold strings, found {text.type}")
    if not pa.types.is_integer(label.type):
        raise DataError(f"{source}: column 'label' must hold integers 0..{num_classes - 1}, found {label.type}")
    if label.null_count or text.null_count:
        raise DataError(f"{source}: {label.null_count + text.null_count} missing value(s) in 'text'/'label'")
    outside = pc.or_(pc.less(label, 0), pc.greater_equal(label, num_classes))
    n_outside = pc.sum(outside).as_py() or 0
    if n_outside:
        first = pc.filter(label, outside)[0].as_py()
        raise DataError(
            f"{source}: {n_outside} label(s) outside the classes 0..{num_classes - 1} (e.g. {first}); "
            "set dataset.num_classes or fix the labels"
        )
    empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0)
    n_empty = pc.sum(empty).as_py() or 0
    if n_empty:
        if n_empty == len(ds):
            raise DataError(f"{source}: all {n_empty} texts are empty or whitespace-only")
        log.warning("%s: dropped %d empty or whitespace-only text(s) of %d", source, n_empty, len(ds))
        keep = pc.invert(empty).to_numpy(zero_copy_only=False).nonzero()[0]
        ds = ds.select(keep)
    keep_columns = [c for c in ("text", "label", "rationale") if c in ds.column_names]
    ds = ds.select_columns(keep_columns)
    return ds


def carve_validation(train: Dataset, val_size: float, seed: int) -> tuple[Dataset, Dataset]:
    """Seeded, label-stratified split of ``train`` into (train, validation)."""
    size: float | int = int(val_size) if val_size >= 1 else float(val_size)
    if isinstance(size, int) and size >= len(train):
        raise DataError(f"dataset.val_size={size} leaves no training examples (train has {len(train)})")
    labels = sorted(set(train.unique("label")))
    stratified = train.cast_column("label", ClassLabel(num_classes=max(labels) + 1))
    try:
        parts = stratified.train_test_split(test_size=size, stratify_by_column="label", seed=seed)
    except ValueError:  # a class too small to stratify: fall back to a plain seeded split
        try:
            parts = stratified.train_test_split(test_size=size, seed=seed)
        except ValueError as exc:  # e.g. a fraction that rounds to no example at all
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"dataset.val_size={size} cannot split train ({len(train)} examples): {first}") from None
    train_part, val_part = parts["train"], parts["test"]
    value_type = train.features["label"]
    return train_part.cast_column("label", value_type), val_part.cast_column("label", value_type)


def carve_per_class_head(train: Dataset, val_size: float, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Per class, the first examples (in file order) stay in train, the rest is validation.

    The paper's IMDB split: of each class's 12,500 training reviews the first 10,000 train and the
    last 2,500 validate. ``val_size`` (a count or a fraction of all of train) is shared between the
    classes in proportion to their sizes. ``seed`` is unused: nothing is drawn.
    """
    labels = np.asarray(train.with_format("arrow")[:].column("label").to_numpy(zero_copy_only=False))
    total = len(labels)
    n_val = int(val_size) if val_size >= 1 else round(float(val_size) * total)
    if not 0 < n_val < total:
        raise DataError(f"dataset.val_size={val_size} leaves no training or no validation examples (train has {total})")
    train_rows, val_rows = [], []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        cut = len(rows) - round(n_val * len(rows) / total)
        train_rows.append(rows[:cut])
        val_rows.append(rows[cut:])
    return train.select(np.concatenate(train_rows)), train.select(np.concatenate(val_rows))
