"""``results.json``: the one file per run that aggregation reads (DESIGN §8). Never scraped from logs."""

from __future__ import annotations

import json
import math
import os
import platform
import re
from pathlib import Path
from typing import Any

from safr_lightning.fidelity import fidelity_record

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
        info["flags"] = sorted({"avx2", "avx512f", "avx512_bf16"} & set(flags.group(1).split()))
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
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / name
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_jsonable(results), indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path
