"""What every benchmark prints first: the machine, the software, and its measured matmul rate."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time

import torch


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def matmul_gflops(n: int = 1024, m: int | None = None, k: int | None = None, repeat: int = 20) -> float:
    """Measured fp32 matmul rate for [n, k] @ [k, m] on this machine (median of ``repeat``)."""
    m, k = m or n, k or n
    a, b = torch.randn(n, k), torch.randn(k, m)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n * m * k / sorted(times)[len(times) // 2] / 1e9


def header(command: str) -> dict:
    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "command": command,
    }
    print(f"machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']} ({info['torch_threads']} threads)"
          + (f", GPU {info['gpu']}" if info["gpu"] else ", no GPU"))  # fmt: skip
    print(f"command: {command}")
    return info


def run_json(args: list[str], env: dict[str, str] | None = None) -> dict:
    """Run a benchmark worker in its own process (clean RSS, own env) and parse its last JSON line."""
    import json

    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
