"""``trainer.precision=auto``: bf16-mixed where the hardware computes bf16 natively, 32-true elsewhere.

On a CPU without bf16 arithmetic (no ``avx512_bf16``, no ``amx_bf16``: e.g. an AVX2-only Zen 3) a
bf16 matmul is emulated and about 7x *slower* than fp32 (benchmarks/README.md), so ``auto`` only
picks bf16 where it is fast: a CPU with one of those flags, or a CUDA device that supports bf16.
``results.json`` records what was asked, what was used and why (``precision``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

AUTO = "auto"
BF16 = "bf16-mixed"
FP32 = "32-true"
# CPU flags (/proc/cpuinfo) that mean native bf16 arithmetic.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
CUDA_ACCELERATORS = ("gpu", "cuda")


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo cannot be read)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return set()
    found = re.search(r"^flags\s*:\s*(.+)$", cpuinfo, re.M)
    return set(found.group(1).split()) if found else set()


def choose_precision(requested: str, accelerator: str, cpuinfo: str | None = None) -> dict[str, Any]:
    """``{"requested", "used", "why"}`` for ``trainer.precision`` on ``trainer.accelerator``."""
    if requested != AUTO:
        return {"requested": requested, "used": requested, "why": "set by trainer.precision"}
    import torch

    cuda = accelerator in CUDA_ACCELERATORS or (accelerator == "auto" and torch.cuda.is_available())
    if cuda:
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return {"requested": AUTO, "used": BF16, "why": f"CUDA device with bf16: {torch.cuda.get_device_name()}"}
        return {"requested": AUTO, "used": FP32, "why": "CUDA device without bf16 support (or none visible)"}
    flags = cpu_flags(cpuinfo)
    native = [flag for flag in BF16_CPU_FLAGS if flag in flags]
    if native:
        return {"requested": AUTO, "used": BF16, "why": f"CPU computes bf16 natively ({', '.join(native)})"}
    return {
        "requested": AUTO,
        "used": FP32,
        "why": "CPU without amx_bf16 / avx512_bf16: bf16 would be emulated, several times slower than fp32",
    }
