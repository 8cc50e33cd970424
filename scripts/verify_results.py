"""Recompute a run's test accuracy and SRS@k one text at a time, through the public API only.

    python scripts/verify_results.py RUN_DIR [--k 30]

Loads the checkpoint that ``RUN_DIR/results.json`` names, reads the test split straight from
``$SAFR_DATA_DIR/<dataset>/test.parquet`` (not through the DataModule), and for every text:
``encode`` → ``model(..., return_trace=True)`` → FC1 capacity of each token → delete the
``floor(n·k/100 + 0.5)`` highest-capacity tokens (ties: the earlier position first; at least one
token kept) with a Python list → re-run. It shares no code with the batched evaluation except the
model and the capacity formula, and is DESIGN §7's check that results.json is what it claims
(agreement within 0.5 points). The loops are quadratic per text: seconds for SST-2's test set,
hours for IMDB's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

from safr_lightning.module import SAFRModule


def capacity(h: torch.Tensor) -> list[float]:
    """DESIGN §4 for one text's rows h [n, D]: C_i = (h_i·h_i)² / Σ_j (h_i·h_j)², by a loop over tokens."""
    h = h.double()
    out = []
    for hi in h:
        total = sum(float(hi @ hj) ** 2 for hj in h)
        out.append(float(hi @ hi) ** 2 / total if total > 0 else 0.0)
    return out


def delete_top(ids: list[int], scores: list[float], k: float) -> list[int]:
    n = len(ids)
    n_k = min(math.floor(n * k / 100 + 0.5), n - 1)
    order = sorted(range(n), key=lambda i: (-scores[i], i))
    drop = set(order[:n_k])
    return [t for i, t in enumerate(ids) if i not in drop]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--k", type=float, default=30.0)
    args = parser.parse_args()

    if not (args.run_dir / "results.json").is_file():
        sys.exit(f"error: no results.json in {args.run_dir}")
    results = json.loads((args.run_dir / "results.json").read_text())
    if results.get("status") != "ok" or not results.get("checkpoint"):
        sys.exit(f"error: {args.run_dir}/results.json records no finished run (status={results.get('status')!r})")
    module = SAFRModule.load_from_checkpoint(args.run_dir / results["checkpoint"], map_location="cpu").eval()
    dataset = results["dataset"]
    if not os.environ.get("SAFR_DATA_DIR"):
        sys.exit("error: set SAFR_DATA_DIR to the directory holding <dataset>/test.parquet (e.g. ../shared/data)")
    path = Path(os.environ["SAFR_DATA_DIR"]) / dataset / "test.parquet"
    if not path.is_file():
        sys.exit(f"error: no {path}: this script re-reads the test split of sst2/imdb from SAFR_DATA_DIR")
    frame = pd.read_parquet(path)
    # A run may have scored only part of the split: dataset.limit_test keeps the first n texts of the
    # file (recomputed on those); trainer.limit_test_batches keeps whole length-sorted batches, which
    # this per-text script does not rebuild.
    n = int(results["test"].get("n") or len(frame))
    if n < len(frame):
        config = (
            yaml.safe_load((args.run_dir / "config.yaml").read_text())
            if (args.run_dir / "config.yaml").is_file()
            else {}
        )
        if (config.get("dataset") or {}).get("limit_test") != n:
            sys.exit(f"error: the run scored {n} of {len(frame)} test texts by trainer.limit_test_batches; "
                     "verify a run over the whole test split (or one limited by dataset.limit_test)")  # fmt: skip
        print(f"the run scored the first {n} of {len(frame)} test texts (dataset.limit_test): recomputing on those")
        frame = frame.iloc[:n]
    texts, labels = frame["text"].tolist(), frame["label"].tolist()

    t0 = time.perf_counter()
    correct = correct_deleted = 0
    with torch.no_grad():
        for text, label in zip(texts, labels, strict=True):
            batch = module.encode([text])
            out = module.model(batch["input_ids"], batch["attention_mask"], return_trace=True)
            scores = capacity(out.trace["fc1"][0])
            kept = torch.tensor([delete_top(batch["input_ids"][0].tolist(), scores, args.k)])
            deleted = module.model(kept, torch.ones_like(kept, dtype=torch.bool)).logits
            correct += int(out.logits.argmax(-1)) == label
            correct_deleted += int(deleted.argmax(-1)) == label
    acc, acc_k = 100 * correct / len(texts), 100 * correct_deleted / len(texts)
    key = f"{args.k:g}"
    reported_acc = 100 * results["test"]["acc"]
    reported_srs = results["test"]["srs"][key]
    print(f"{len(texts)} texts in {time.perf_counter() - t0:.0f} s")
    print(f"test acc   recomputed {acc:6.2f}   results.json {reported_acc:6.2f}   diff {acc - reported_acc:+.2f}")
    print(
        f"SRS@{key:<4}  recomputed {acc - acc_k:6.2f}   results.json {reported_srs:6.2f}   "
        f"diff {acc - acc_k - reported_srs:+.2f}"
    )
    agree = abs(acc - reported_acc) <= 0.5 and abs(acc - acc_k - reported_srs) <= 0.5
    print("agree within 0.5 points" if agree else "DISAGREE by more than 0.5 points")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
