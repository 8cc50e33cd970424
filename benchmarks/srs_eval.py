"""Cost of the full SRS evaluation against one plain test pass, on the SST-2 test set.

    SAFR_DATA_DIR=../shared/data PYTHONPATH=src python benchmarks/srs_eval.py [--ckpt PATH] [--repeats 3]

The SRS evaluation is what a run does after ``trainer.test``: 5 k's × (deletion by the scorer +
3 random deletions + the sufficiency copy) plus the traced original pass, i.e. about 16× the
token work of one forward pass. It is compared with two meanings of "one plain test pass":

(a) the project's ``trainer.test`` over the test set (forward with trace, the three loss terms,
    torchmetrics accuracy, Lightning's loop), what a training run pays for its test numbers;
(b) a bare loop ``model(input_ids, attention_mask)`` under ``torch.inference_mode`` over the
    same batches: the cheapest possible forward pass, no trace, no loss.

and, as the naive comparison, the same SRS evaluation re-running the model's own forward on every
shortened batch (``fast=False``), which must give identical numbers. Timings are the minimum over
``--repeats`` interleaved rounds, in wall-clock seconds and in process CPU seconds (the latter is
steadier on a machine shared with other jobs).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from safr_lightning.analysis.srs import SRSSettings, evaluate_srs
from safr_lightning.cli import quiet_known_warnings
from safr_lightning.config import register_configs
from safr_lightning.experiment import build_datamodule, build_module, build_trainer
from safr_lightning.module import SAFRModule

CONF = Path(__file__).resolve().parents[1] / "conf"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def ffn_gflops(dtype: torch.dtype, tokens: int = 16384, repeat: int = 5) -> float:
    """Measured rate of an FC1-shaped matmul ([tokens, 256] @ [256, 1024]) in ``dtype``."""
    x, w = torch.randn(tokens, 256).to(dtype), torch.randn(1024, 256).to(dtype)
    with torch.inference_mode():
        torch.nn.functional.linear(x, w)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            torch.nn.functional.linear(x, w)
            times.append(time.perf_counter() - start)
    return 2 * tokens * 256 * 1024 / sorted(times)[len(times) // 2] / 1e9


def srs_flop_floor(model: torch.nn.Module, batches: list, settings: SRSSettings) -> float:
    """FLOPs the SRS evaluation cannot do without, counted from the texts' lengths.

    Each shortened copy (per k: the scorer's deletion, ``random_draws`` random ones, the sufficiency
    copy) runs attention over its kept tokens, the output projection and the FFN at every position
    that reaches the logits: its kept tokens, or all L positions with the paper's pooling over PAD.
    Its tokens' embedding, VMASK and Q/K/V projections are the original pass's (counted once: the
    traced forward over the batch). LayerNorm, softmax and the classifier are left out.
    """
    from safr_lightning.metrics.deletion import n_delete, n_keep

    e = model.d_model
    f = model.blocks[0].fc1.out_features
    width = model.fixed_length if getattr(model, "pool_over_pad", False) else None
    per_position = 2 * e * e + 4 * e * f  # output projection, FC1, FC2
    total = 0.0
    for batch in batches:
        lengths = batch["attention_mask"].sum(1).double()
        traced = width or batch["attention_mask"].shape[1]
        total += float(len(lengths)) * traced * (8 * e * e + 4 * e * f) + float((4 * traced * lengths * e).sum())
        for k in settings.ks:
            kept_del = lengths - n_delete(lengths.long(), k).double()
            kept_suf = n_keep(lengths.long(), k).double()
            for kept, copies in ((kept_del, 1 + settings.random_draws), (kept_suf, 1)):
                positions = torch.full_like(kept, float(width)) if width else kept
                total += copies * float((positions * per_position + 4 * positions * kept * e).sum())
    return total


def agreement(fast: dict, naive: dict) -> str:
    """Accuracies must be identical; probabilities (comprehensiveness, sufficiency) agree to rounding."""
    exact = ("acc", "acc_capacity", "acc_random", "srs", "gap", "capacity")
    if any(fast[name] != naive[name] for name in exact):
        return f"DIFFERENT accuracies\n  fast : {fast}\n  naive: {naive}"
    diff = max(abs(fast[name][k] - naive[name][k]) for name in ("comprehensiveness", "sufficiency") for k in fast[name])
    return f"identical accuracies and SRS; probabilities within {diff:.1e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", help="a checkpoint from train (default: a fresh seeded model)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the naive re-run (slow)")  # fmt: skip
    args = parser.parse_args()
    if not os.environ.get("SAFR_DATA_DIR"):
        sys.exit("set SAFR_DATA_DIR (e.g. ../shared/data), the directory holding sst2/{train,test}.parquet")

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    # Whether a bf16 path could pay off here: it needs AMX or AVX512-BF16, which not every CPU has.
    print(f"FC1-shaped matmul: fp32 {ffn_gflops(torch.float32):.0f} GFLOP/s, "
          f"bf16 {ffn_gflops(torch.bfloat16):.0f} GFLOP/s")  # fmt: skip
    register_configs()
    quiet_known_warnings()
    overrides = ["dataset=sst2", "logger=none", "trainer.enable_progress_bar=false"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    torch.manual_seed(0)
    if args.ckpt:
        module = SAFRModule.load_from_checkpoint(args.ckpt, map_location="cpu")
        trained = module.hparams.get("run_config")
        if trained is not None:  # the checkpoint's own data settings (a paper-mode model's tokenizer keys)
            trained = OmegaConf.create(trained)
            trained.paths.data_dir = os.environ["SAFR_DATA_DIR"]
            cfg = OmegaConf.merge(cfg, {"dataset": trained.dataset, "data": trained.data, "fidelity": trained.fidelity,
                                        "paths": trained.paths})  # fmt: skip
        datamodule = build_datamodule(cfg, tokenizer=module.tokenizer)
        datamodule.setup("test")
    else:
        datamodule = build_datamodule(cfg)
        datamodule.setup("test")
        module = build_module(cfg, datamodule.tokenizer.to_str())
    module.eval()
    model = module.model
    batches = list(datamodule.test_dataloader())
    tokens = sum(int(b["attention_mask"].sum()) for b in batches)
    texts = sum(len(b["labels"]) for b in batches)
    print(f"SST-2 test: {texts} texts, {tokens} tokens, {len(batches)} batches of "
          f"{cfg.data.eval_batch_size}; model from {args.ckpt or 'a fresh seed'} "
          f"(fidelity {cfg.fidelity.name})")  # fmt: skip

    settings = SRSSettings.from_config(cfg.srs)
    trainer = build_trainer(cfg, [], [], Path(tempfile.mkdtemp(prefix="srs-bench-")))

    def bare() -> None:
        with torch.inference_mode():
            for b in batches:
                model(b["input_ids"], b["attention_mask"])

    rounds: dict[str, list[tuple[float, float]]] = {"trainer.test": [], "bare forward": [], "SRS": []}
    result = None
    for _ in range(args.repeats):
        for name, fn in (
            (
                "trainer.test",
                lambda: trainer.test(module, dataloaders=datamodule.test_dataloader(), verbose=False),
            ),
            ("bare forward", bare),
            ("SRS", lambda: evaluate_srs(model, batches, settings)),
        ):
            wall, cpu, out = timed(fn)
            rounds[name].append((wall, cpu))
            if name == "SRS":
                result = out
    best = {name: (min(w for w, _ in r), min(c for _, c in r)) for name, r in rounds.items()}
    if args.naive:
        wall, cpu, naive = timed(lambda: evaluate_srs(model, batches, SRSSettings.from_config(cfg.srs, fast=False)))
        best["SRS, naive re-run"] = (wall, cpu)
        print(f"naive re-run: {agreement(result, naive)}")

    print(f"\n{'':22s} {'wall s':>8s} {'cpu s':>8s}   (min of {args.repeats})")
    for name, (wall, cpu) in best.items():
        print(f"{name:22s} {wall:8.2f} {cpu:8.2f}")
    srs_wall, srs_cpu = best["SRS"]
    floor = srs_flop_floor(model, batches, settings)
    rate = ffn_gflops(torch.float32)
    print(f"\nFLOP floor of the SRS evaluation (the positions it must compute): {floor / 1e12:.2f} TFLOP, "
          f"{floor / 1e9 / rate:.1f} s at the measured {rate:.0f} GFLOP/s; SRS / floor = "
          f"{srs_wall / (floor / 1e9 / rate):.2f}x")  # fmt: skip
    print()
    for base in ("trainer.test", "bare forward"):
        wall, cpu = best[base]
        print(f"SRS / {base:14s} {srs_wall / wall:5.2f}x wall  {srs_cpu / cpu:5.2f}x cpu")
    if "SRS, naive re-run" in best:
        wall, cpu = best["SRS, naive re-run"]
        print(f"naive / fast SRS      {wall / srs_wall:5.2f}x wall  {cpu / srs_cpu:5.2f}x cpu")
    assert result is not None
    print(f"\nacc {result['acc']:.4f}  " + "  ".join(
        f"srs@{k} {v:.2f}" for k, v in result["srs"].items()))  # fmt: skip


if __name__ == "__main__":
    main()
