"""Training throughput of the project against the naive (official-code-style) trainer, same machine, same run.

    python benchmarks/train_throughput.py --dataset sst2 --data-dir ../shared/data
    python benchmarks/train_throughput.py --dataset imdb --data-dir ../shared/data --naive-batches 40

Each side runs in its own process (so peak RSS and allocator settings are its own): ours is one
whole epoch through the DataModule, SAFRModule and Lightning Trainer (validation off); the naive
trainer is one epoch, or its first N batches when --naive-batches is given (its rate per sample is
steady, so this only shortens the wait). Also prints the FLOPs of each epoch, counted from the
shapes (benchmarks/flops.py), against the machine's measured matmul rate.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import header, matmul_gflops, run_json  # noqa: E402
from flops import step_flops  # noqa: E402

MAX_LEN = {"sst2": 128, "imdb": 256}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=list(MAX_LEN), default="sst2")
    parser.add_argument("--data-dir", default=os.environ.get("SAFR_DATA_DIR", "../shared/data"))
    parser.add_argument("--batches", type=int, default=0, help="ours: this many batches (0: whole epoch)")
    parser.add_argument("--naive-batches", type=int, default=0, help="naive: this many batches (0: whole epoch)")
    parser.add_argument("--skip-naive", action="store_true")
    args, overrides = parser.parse_known_args()
    header(" ".join(["python", *sys.argv]))
    peak_linear = matmul_gflops(4096, 1024, 256)
    peak_square = matmul_gflops(1024)
    print(f"measured fp32 matmul: {peak_linear:.0f} GFLOP/s at [4096x256]@[256x1024], "
          f"{peak_square:.0f} GFLOP/s at 1024^2 ({torch.get_num_threads()} threads)")  # fmt: skip

    ours = run_json([str(HERE / "run_ours.py"), "--dataset", args.dataset, "--data-dir", args.data_dir,
                     "--batches", str(args.batches), *overrides])  # fmt: skip
    rows = [ours]
    if not args.skip_naive:
        # The naive trainer runs as the official code would: plain PyTorch, default allocator.
        naive = run_json([str(HERE / "naive.py"), "--dataset", args.dataset, "--data-dir", args.data_dir,
                          "--batches", str(args.naive_batches)])  # fmt: skip
        per_batch = step_flops(32, MAX_LEN[args.dataset], 0, naive=True)["total"]
        naive["flops"] = per_batch * naive["steps"]
        rows.append(naive)

    print(f"\n{'impl':6} {'samples':>8} {'epoch%':>7} {'seconds':>8} {'samples/s':>10} {'real tok/s':>11} "
          f"{'TFLOP':>7} {'GFLOP/s':>8} {'%peak':>6} {'RSS GB':>7}")  # fmt: skip
    for r in rows:
        gflops = r["flops"] / r["seconds"] / 1e9
        print(f"{r['impl']:6} {r['samples']:8d} {100 * r['epoch_fraction']:6.1f}% {r['seconds']:8.1f} "
              f"{r['samples_per_s']:10.1f} {r['tokens_per_s']:11.0f} {r['flops'] / 1e12:7.2f} {gflops:8.1f} "
              f"{100 * gflops / peak_linear:5.0f}% {r['peak_rss_gb']:7.2f}")  # fmt: skip
    if len(rows) == 2:
        print(f"\nspeed-up (samples/s, ours / naive): {ours['samples_per_s'] / rows[1]['samples_per_s']:.2f}x")
        epoch_s = ours["seconds"] / ours["epoch_fraction"]
        naive_epoch_s = rows[1]["seconds"] / rows[1]["epoch_fraction"]
        print(f"ours: {epoch_s:.1f} s per {args.dataset} epoch; naive: {naive_epoch_s:.1f} s")


if __name__ == "__main__":
    main()
