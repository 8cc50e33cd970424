"""``results.json``: the one file per run that aggregation reads (DESIGN §8). Never scraped from logs.

Written by :func:`write_results`; read by :func:`load_record` (strict: one line if unreadable) or
:func:`read_record` (lenient: None), as a :class:`RunRecord` whose accessors say what the file
holds. The per-k blocks (``acc_capacity``, ``srs``, ...) are keyed by :func:`k_key` and read back with
:func:`per_k` / :func:`value_at_k`, which accept ``"30"`` and ``"30.0"`` alike.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safr_lightning.errors import SAFRError
from safr_lightning.fidelity import fidelity_record
from safr_lightning.files import write_text_atomic

RESULTS_FILE = "results.json"


def run_identity(cfg: Any) -> dict[str, Any]:
    """The fields that say which configuration a run is (the aggregation key, plus provenance)."""
    return {
        "dataset": cfg.dataset.name,
        "seed": int(cfg.seed),
        "lambda": {"imp": float(cfg["lambda"].imp), "inter": float(cfg["lambda"].inter)},
        "vmask": bool(cfg.model.vmask),
        "model": cfg.model.name,
        "fidelity": fidelity_record(cfg),
    }


def machine_info() -> dict[str, Any]:
    """What ran it: CPU model, cores, the vector extensions that set fp32/bf16 speed, torch, threads."""
    import torch

    info: dict[str, Any] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "flags": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    names = re.findall(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    if names:
        info["cpu"] = names[0].strip()
    # "AMD EPYC" alone does not tell Zen 3 (family 25, model 1) from Zen 4 (model 17).
    for key, field in (("family", "cpu family"), ("model", "model")):
        found = re.search(rf"^{field}\s*:\s*(\d+)$", text, re.M)
        if found:
            info[key] = int(found.group(1))
    if flags:
        info["flags"] = sorted({"avx2", "avx512f", "avx512_bf16", "amx_bf16"} & set(flags.group(1).split()))
    return {**info, "torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version()}


def _jsonable(value: Any) -> Any:
    """NaN/inf become null (JSON has no NaN); tensors and numpy scalars become numbers."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_results(run_dir: Path, results: dict[str, Any], name: str = RESULTS_FILE) -> Path:
    """Write ``run_dir/results.json`` (or ``name``) atomically, so a reader never sees half a file."""
    return write_text_atomic(run_dir / name, json.dumps(_jsonable(results), indent=2, sort_keys=False) + "\n")


class ResultsUnreadable(SAFRError):
    """A results.json (or evaluation.json) that is not a readable JSON object; ``cause`` says why."""

    def __init__(self, path: Path, cause: str) -> None:
        super().__init__(f"unreadable {path.name}: {cause}")
        self.path, self.cause = path, cause


@dataclass(frozen=True)
class RunRecord:
    """One ``results.json`` (or ``evaluation.json``) as read; ``data`` is the raw object."""

    path: Path
    data: Mapping[str, Any]

    def _text(self, key: str) -> str | None:
        value = self.data.get(key)
        return value if isinstance(value, str) else None

    def _block(self, key: str) -> dict[str, Any] | None:
        value = self.data.get(key)
        return value if isinstance(value, dict) else None

    @property
    def status(self) -> str | None:
        """``ok`` | ``running`` | ``failed`` | ``interrupted``, or None (an evaluation file)."""
        return self._text("status")

    @property
    def reason(self) -> str | None:
        return self._text("reason")

    @property
    def checkpoint(self) -> str | None:
        """The checkpoint the run was tested on, relative to its run dir."""
        return self._text("checkpoint")

    @property
    def fingerprint(self) -> str | None:
        return self._text("fingerprint")

    @property
    def overrides(self) -> list[str] | None:
        value = self.data.get("overrides")
        return [str(v) for v in value] if isinstance(value, list) else None

    @property
    def wandb(self) -> dict[str, Any] | None:
        """The W&B identity (project, group, id, ...) when the run logged to W&B."""
        return self._block("wandb")

    @property
    def test(self) -> dict[str, Any] | None:
        """The test metrics (DESIGN §8); an evaluation.json holds them at its top level."""
        block = self._block("test")
        if block is not None:
            return block
        return dict(self.data) if "acc" in self.data and "ks" in self.data else None


def load_record(path: Path) -> RunRecord:
    """Read ``path``; :class:`ResultsUnreadable` (one line naming it) if it is not a JSON object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ResultsUnreadable(path, str(exc)) from None
    if not isinstance(data, dict):
        raise ResultsUnreadable(path, "not a JSON object")
    return RunRecord(path, data)


def read_record(run_dir_or_file: Path) -> RunRecord | None:
    """``run_dir/results.json`` (or the file itself) when present and readable, else None."""
    path = run_dir_or_file / RESULTS_FILE if run_dir_or_file.is_dir() else run_dir_or_file
    try:
        return load_record(path)
    except ResultsUnreadable:
        return None


def k_key(k: float) -> str:
    """``30.0 -> "30"``, ``12.5 -> "12.5"``: the keys of the per-k blocks in results.json."""
    return f"{k:g}"


def per_k(by_k: Any) -> dict[float, float | None]:
    """A per-k block as ``{k: value}`` (keys ``"30"`` or ``"30.0"``; keys that are no number dropped)."""
    if not isinstance(by_k, Mapping):
        return {}
    out: dict[float, float | None] = {}
    for key, value in by_k.items():
        try:
            k = float(key)
        except (TypeError, ValueError):
            continue
        out[k] = None if value is None else float(value)
    return out


def value_at_k(by_k: Any, k: float) -> float | None:
    """``by_k[k]`` for a per-k block; None when absent."""
    return per_k(by_k).get(float(k))
