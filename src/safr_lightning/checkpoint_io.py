"""Checkpoints written whole or not at all: Lightning's ``CheckpointIO`` over :mod:`safr_lightning.files`.

Lightning's own ``TorchCheckpointIO`` writes through an fsspec transaction whose temporary file lives
in the system's temp dir (``/tmp``) and is then *moved* into the run dir: across file systems that is
a copy, and a full disk or a kill during it leaves a truncated ``last.ckpt`` under its final name,
which a resume then trips over. Here the file is written beside its final name, fsynced and renamed
(``files.write_bytes_atomic``); a full disk is one line (:class:`~safr_lightning.files.DiskFull`).
"""

from __future__ import annotations

import io
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.fabric.utilities.types import _PATH

from safr_lightning.files import write_bytes_atomic


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose local saves are atomic in the checkpoint's own directory."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if storage_options is not None or not _is_local_file_protocol(path):  # remote: the store's own semantics
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        # Serialized in memory first (as Lightning does): torch's own file writer reports a full disk as
        # a RuntimeError and keeps the file open in its traceback, so its blocks would not come back.
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_bytes_atomic(path, buffer.getbuffer())
