from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from safr_lightning.experiment import build_datamodule, run_training
from safr_lightning.metrics.superposition import capacity
from safr_lightning.module import SAFRModule
from tests import reference as ref

KEYS = {"10", "20", "30", "40", "50"}


def last_values(path: Path) -> dict[str, float]:
    """The last non-empty value of every column of a Lightning CSVLogger metrics.csv."""
    values: dict[str, float] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            values.update({k: float(v) for k, v in row.items() if v not in ("", None)})
    return values


def text_by_text(module: SAFRModule, texts: list[str], labels: list[int], k: float = 30) -> tuple[float, float]:
    """Accuracy before and after deleting each text's top-k % tokens by FC1 capacity, one text at a time."""
    correct = correct_deleted = 0
    for text, label in zip(texts, labels, strict=True):
        batch = module.encode([text])
        with torch.no_grad():
            out = module.model(batch["input_ids"], batch["attention_mask"], return_trace=True)
            cap = capacity(out.trace["fc1"], batch["attention_mask"])[0].tolist()
            kept = torch.tensor([ref.delete_top(batch["input_ids"][0].tolist(), cap, k)])
            deleted = module.model(kept, torch.ones_like(kept, dtype=torch.bool)).logits
        correct += int(out.logits.argmax(-1)) == label
        correct_deleted += int(deleted.argmax(-1)) == label
    return correct / len(texts), correct_deleted / len(texts)


def test_callback_runs_inside_fast_dev_run(make_cfg: Callable, tmp_path: Path) -> None:
    results = run_training(make_cfg("debug=fdr"), tmp_path)
    test = results["test"]
    assert set(test["srs"]) == set(test["acc_capacity"]) == set(test["acc_random"]) == KEYS
    assert test["n"] == 32  # fast_dev_run: the one test batch the test loop saw (eval_batch_size 32)
    assert {"gap", "comprehensiveness", "sufficiency", "aopc_comprehensiveness", "capacity"} <= set(test)
    assert "rationale_precision" in test and "loss_ce" in test
    assert not [k for k in test if "@" in k], "flat logger names do not belong in results.json"
    assert results["timing"]["srs_eval_s"] > 0


def test_val_and_test_srs_are_logged_and_land_in_results(make_cfg: Callable, tmp_path: Path) -> None:
    results = run_training(make_cfg("logger=csv"), tmp_path)
    logged = last_values(tmp_path / "csv" / "metrics.csv")
    assert {"val/srs@30", "val/acc_capacity@30", "val/acc_random@30", "test/srs@10", "test/acc_random@50",
            "test/capacity_important"} <= set(logged)  # fmt: skip
    assert "val/srs@10" not in logged  # validation runs srs.val_ks only (default [30])
    assert logged["test/srs@30"] == pytest.approx(results["test"]["srs"]["30"], abs=1e-4)
    assert logged["test/acc"] == pytest.approx(results["test"]["acc"])
    assert results["test"]["acc"] == pytest.approx(
        results["test"]["srs"]["30"] / 100 + results["test"]["acc_capacity"]["30"]
    )


def test_validation_ks_and_draws_are_configurable(make_cfg: Callable, tmp_path: Path) -> None:
    run_training(make_cfg("logger=csv", "srs.val_ks=[10,50]", "srs.val_random_draws=2"), tmp_path)
    logged = last_values(tmp_path / "csv" / "metrics.csv")
    assert {"val/srs@10", "val/srs@50"} <= set(logged) and "val/srs@30" not in logged


def test_srs_can_be_turned_off(make_cfg: Callable, tmp_path: Path) -> None:
    results = run_training(make_cfg("debug=fdr", "srs.enabled=false"), tmp_path / "off")
    assert "srs" not in results["test"] and "srs_eval_s" not in results["timing"]
    # (fast_dev_run turns loggers off, so one short epoch here)
    run_training(make_cfg("logger=csv", "srs.val_samples=0", "trainer.max_epochs=1"), tmp_path / "no-val")
    logged = last_values(tmp_path / "no-val" / "csv" / "metrics.csv")
    assert "test/srs@30" in logged and not [k for k in logged if k.startswith("val/srs")]


def test_results_agree_with_independent_recomputation_through_the_public_api(
    make_cfg: Callable, tmp_path: Path
) -> None:
    """DESIGN's check: load the checkpoint, encode, trace fc1, delete, re-run; within 0.5 points."""
    cfg = make_cfg("trainer.limit_test_batches=null")
    results = run_training(cfg, tmp_path)
    module = SAFRModule.load_from_checkpoint(tmp_path / results["checkpoint"], map_location="cpu").eval()
    datamodule = build_datamodule(cfg)
    datamodule.setup("test")
    texts, labels = datamodule.texts["test"]["text"], datamodule.texts["test"]["label"]
    acc, acc_deleted = text_by_text(module, texts, labels)
    assert results["test"]["n"] == len(texts)
    assert results["test"]["acc"] * 100 == pytest.approx(acc * 100, abs=0.5)
    assert results["test"]["srs"]["30"] == pytest.approx((acc - acc_deleted) * 100, abs=0.5)


def test_wandb_gets_the_srs_curve_as_a_table(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from lightning.pytorch.loggers import CSVLogger, WandbLogger

    from safr_lightning.callbacks.srs import SRSCallback

    wandb_logger = WandbLogger(mode="disabled", save_dir=str(tmp_path))
    tables: list[dict] = []
    monkeypatch.setattr(wandb_logger, "log_table", lambda **kwargs: tables.append(kwargs))
    result = {
        "ks": [10, 30],
        "acc_capacity": {"10": 0.7, "30": 0.6},
        "acc_random": {"10": 0.8, "30": 0.75},
        "srs": {"10": 10.0, "30": 20.0},
        "gap": {"10": 10.0, "30": 15.0},
        "comprehensiveness": {"10": 0.1, "30": 0.2},
        "sufficiency": {"10": 0.05, "30": 0.04},
    }
    trainer = SimpleNamespace(loggers=[CSVLogger(str(tmp_path)), wandb_logger])
    SRSCallback._log_curve(trainer, result)  # type: ignore[arg-type]
    assert len(tables) == 1 and tables[0]["key"] == "test/srs_curve"
    assert tables[0]["columns"][:4] == ["k", "acc_capacity", "acc_random", "srs"]
    assert tables[0]["data"] == [
        [10.0, 0.7, 0.8, 10.0, 10.0, 0.1, 0.05],
        [30.0, 0.6, 0.75, 20.0, 15.0, 0.2, 0.04],
    ]


def test_under_bf16_the_stored_srs_is_the_stored_accuracies_difference(tmp_path: Path) -> None:
    """The test loop autocasts to bf16; acc and every acc_capacity@k must come from one forward precision."""
    from tests.cli_runs import run_train
    from tests.conftest import TINY

    run_dir = tmp_path / "run"
    proc = run_train(
        *TINY, "trainer.precision=bf16-mixed", "trainer.limit_test_batches=null", f"hydra.run.dir={run_dir}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    test = json.loads((run_dir / "results.json").read_text())["test"]
    assert test["acc_precision"] == "32-true"
    for k, srs in test["srs"].items():
        assert srs == pytest.approx(100 * (test["acc"] - test["acc_capacity"][k]), abs=1e-9)


def test_final_val_scores_the_tested_checkpoint_on_the_whole_validation_split(
    make_cfg: Callable, tmp_path: Path
) -> None:
    """srs.final_val: the same text-by-text recomputation as above, on the validation split."""
    cfg = make_cfg("srs.final_val=true", "trainer.max_epochs=2", "srs.val_samples=8")
    results = run_training(cfg, tmp_path)
    final = results["val"]["final"]
    module = SAFRModule.load_from_checkpoint(tmp_path / results["checkpoint"], map_location="cpu").eval()
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    texts, labels = datamodule.texts["validation"]["text"], datamodule.texts["validation"]["label"]
    acc, acc_deleted = text_by_text(module, texts, labels)
    assert final["n"] == len(texts) > 8  # the whole split, not the per-epoch subset
    assert final["checkpoint"] == "best" and set(final["srs"]) == KEYS
    assert final["acc"] == pytest.approx(acc, abs=0.005)
    assert final["acc"] == pytest.approx(results["val"]["acc"], abs=1e-6)  # the best epoch's own val/acc
    assert final["srs"]["30"] == pytest.approx((acc - acc_deleted) * 100, abs=0.5)
    assert "final" not in run_training(make_cfg("trainer.max_epochs=1"), tmp_path / "off")["val"]
