"""Read an offline W&B run file (``run-<id>.wandb``) without the network: what the run recorded.

The file is a LevelDB-style log (W&B's transaction log): a 7-byte ``:W&B`` header, then 32 KiB
blocks of records, each ``crc32 (4) | length (2) | type (1)`` + payload, where type 1 is a whole
record and 2/3/4 its first/middle/last fragments. Each payload is a ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2 as pb

FILE_HEADER = 7
BLOCK = 32 * 1024
RECORD_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path) -> list[pb.Record]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    records: list[bytes] = []
    pending = b""
    pos = FILE_HEADER
    while pos + RECORD_HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < RECORD_HEADER:  # the block's tail is padding
            pos += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + RECORD_HEADER])
        if length == 0 and kind == 0:
            pos += left_in_block
            continue
        chunk = data[pos + RECORD_HEADER : pos + RECORD_HEADER + length]
        pos += RECORD_HEADER + length
        if kind == FULL:
            records.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            records.append(pending + chunk)
    parsed = []
    for raw in records:
        record = pb.Record()
        record.ParseFromString(raw)
        parsed.append(record)
    return parsed


@dataclass
class OfflineRun:
    """The parts of a W&B run the tests check."""

    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    exit_code: int | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)


def offline_run(run_dir: Path, name: str | None = None, training: bool = False) -> OfflineRun:
    """The offline W&B run under ``run_dir/wandb``: the only one, the one named, or the first (training)."""
    paths = sorted(run_dir.glob(f"wandb/{name or 'offline-run-*'}/run-*.wandb"))
    if training:
        paths = paths[:1]  # the training run starts first; evaluations come later
    (path,) = paths
    run = OfflineRun()
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.group, run.job_type, run.tags = record.run.run_group, record.run.job_type, list(record.run.tags)
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
        elif kind == "summary":
            for item in record.summary.update:
                key = item.key or "/".join(item.nested_key)
                run.summary[key] = json.loads(item.value_json)
        elif kind == "metric":
            name = record.metric.name or record.metric.glob_name
            run.metrics[name] = {"step_metric": record.metric.step_metric, "max": record.metric.summary.max}
        elif kind == "files":
            run.files |= {item.path for item in record.files.files}
    return run
