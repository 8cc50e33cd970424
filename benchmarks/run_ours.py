"""Worker: one training epoch of the project's own path (DataModule + SAFRModule + Lightning Trainer).

    python benchmarks/run_ours.py --dataset sst2 --data-dir ../shared/data [--batches N] [overrides...]

Validation, checkpoints and loggers are off so the clock sees training only. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import lightning as L
import torch
from hydra import compose, initialize_config_dir

from safr_lightning.callbacks import ThroughputMonitor
from safr_lightning.config import register_configs
from safr_lightning.experiment import build_datamodule, build_module, quiet_known_warnings
from safr_lightning.memory import keep_freed_memory
from safr_lightning.paths import CONFIG_DIR
from safr_lightning.precision import choose_precision

from flops import step_flops


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="sst2")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--batches", type=int, default=0, help="0: one whole epoch")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. lambda.inter=0")
    args = parser.parse_args()
    quiet_known_warnings()
    keep_freed_memory()  # as run_training does
    register_configs()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"dataset={args.dataset}", f"dataset.local_dir={args.data_dir}",
                                          *args.overrides])  # fmt: skip
    L.seed_everything(0, verbose=False)
    start = time.perf_counter()
    dm = build_datamodule(cfg)
    dm.setup("fit")
    setup_s = time.perf_counter() - start
    module = build_module(cfg, dm.tokenizer.to_str())
    flops = 0.0  # of the batches this epoch will train on (the sampler's order is a function of seed, epoch)
    for i, batch in enumerate(dm.train_dataloader()):
        if args.batches and i >= args.batches:
            break
        ids = batch["input_ids"]
        # With fixed padding attention keeps only the keys up to the batch's longest real text.
        keys = int(batch["attention_mask"].sum(1).max()) if cfg.fidelity.fixed_padding else None
        flops += step_flops(ids.shape[0], ids.shape[1], int(ids.unique().numel()), keys=keys)["total"]
    throughput = ThroughputMonitor()
    precision = choose_precision(str(cfg.trainer.precision), str(cfg.trainer.accelerator))["used"]
    trainer = L.Trainer(
        accelerator=cfg.trainer.accelerator, devices=1, precision=precision, max_epochs=1,
        limit_train_batches=args.batches or 1.0, limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[throughput],
    )  # fmt: skip
    trainer.fit(module, datamodule=dm)
    epoch = throughput.epochs[-1]
    print(json.dumps({
        "impl": "ours", "dataset": args.dataset, "steps": trainer.global_step, "samples": epoch["samples"],
        "tokens": epoch["tokens"], "seconds": epoch["train_s"], "samples_per_s": epoch["samples_per_s"],
        "tokens_per_s": epoch["tokens_per_s"], "epoch_fraction": epoch["samples"] / len(dm.splits["train"]),
        "vocab": dm.tokenizer.get_vocab_size(), "setup_s": setup_s, "threads": torch.get_num_threads(),
        "flops": flops, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
