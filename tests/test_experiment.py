from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from safr_lightning.experiment import run_training


def _metrics(run_dir: Path) -> dict[str, Any]:
    """results.json without what may differ between identical runs: timing and paths."""
    results = json.loads((run_dir / "results.json").read_text())
    return {k: v for k, v in results.items() if k not in ("timing", "run_dir")}


def test_same_seed_and_config_give_identical_results(make_cfg: Callable, tmp_path: Path) -> None:
    for name in ("a", "b"):
        run_training(make_cfg(), tmp_path / name)
    a, b = _metrics(tmp_path / "a"), _metrics(tmp_path / "b")
    assert a["status"] == "ok" and set(a["test"]) >= {"acc", "loss", "loss_ce", "loss_imp", "loss_inter"}
    assert a == b


def test_trainer_extra_passes_any_lightning_keyword_and_refuses_others(make_cfg: Callable) -> None:
    import lightning as L
    import pytest
    from omegaconf import open_dict

    from safr_lightning.errors import ConfigError
    from safr_lightning.experiment import build_trainer, trainer_extra

    cfg = make_cfg("+trainer.extra.accumulate_grad_batches=2", "+trainer.extra.gradient_clip_algorithm=value")
    assert trainer_extra(cfg) == {"accumulate_grad_batches": 2, "gradient_clip_algorithm": "value"}
    trainer = build_trainer(cfg, [], [], Path("."))
    assert isinstance(trainer, L.Trainer) and trainer.accumulate_grad_batches == 2
    with open_dict(cfg):
        cfg.trainer.extra = {"accumulate_grad_batchs": 2}
    with pytest.raises(ConfigError, match=r"trainer.extra.accumulate_grad_batchs is not a lightning.Trainer keyword; "
                                          r"did you mean accumulate_grad_batches\?"):  # fmt: skip
        trainer_extra(cfg)
    with open_dict(cfg):
        cfg.trainer.extra = {"max_epochs": 3}
    with pytest.raises(ConfigError, match=r"trainer.extra.max_epochs; set trainer.max_epochs"):
        trainer_extra(cfg)


SMALL = ["dataset=synthetic", "logger=none", "model.d_model=32", "model.n_heads=4", "model.d_ff=64",
         "vmask.hidden=32", "dataset.synthetic.train_size=256", "dataset.synthetic.val_size=64",
         "dataset.synthetic.test_size=64"]  # fmt: skip


def test_debug_overfit_trains_on_the_same_few_batches(tmp_path: Path) -> None:
    from tests.cli_runs import run_train

    run_dir = tmp_path / "run"
    proc = run_train(*SMALL, "debug=overfit", "trainer.max_epochs=5", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "ok" and results["global_step"] == 5 * 4  # 4 batches per epoch, whatever the data
    assert "test" not in results


def test_debug_profiler_prints_lightnings_profile_and_tags_reach_the_run(tmp_path: Path) -> None:
    from safr_lightning.experiment import run_tags
    from tests.cli_runs import run_train

    proc = run_train(*SMALL, "debug=profiler", "srs.enabled=false", "callbacks.figures.enabled=false",
                     f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Profiler Report" in proc.stdout + proc.stderr
    from hydra import compose, initialize_config_dir

    from safr_lightning.config import register_configs
    from tests.conftest import CONF

    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[*SMALL, "tags=[ablation-v2,lr-test]"])
    assert run_tags(cfg)[-2:] == ["ablation-v2", "lr-test"]


def test_open_doors_take_real_lightning_objects(tmp_path: Path) -> None:
    """A LearningRateMonitor from callbacks.extra, AdamW with warm-up + cosine, gradient clipping."""
    import csv as csv_module

    from hydra import compose, initialize_config_dir

    from safr_lightning.config import register_configs
    from safr_lightning.module import warmup_decay
    from tests.conftest import CONF, TINY

    overrides = [o for o in TINY if not o.startswith("logger")] + [
        "logger=csv", "optim=adamw", "optim.scheduler=cosine", "optim.warmup_steps=2", "trainer.gradient_clip_val=0.5",
        "callbacks.extra=[{_target_:lightning.pytorch.callbacks.LearningRateMonitor,logging_interval:step}]",
        "trainer.log_every_n_steps=1",
    ]  # fmt: skip
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    results = run_training(cfg, tmp_path / "run")
    assert results["status"] == "ok"
    rows = list(csv_module.DictReader((tmp_path / "run" / "csv" / "metrics.csv").open()))
    lrs = [float(r["lr-AdamW"]) for r in rows if r.get("lr-AdamW")]
    total = results["global_step"]
    expected = [1e-4 * warmup_decay(2, total, "cosine")(s) for s in range(len(lrs))]
    assert lrs == pytest.approx(expected) and lrs[0] == pytest.approx(0.5e-4)  # half-way up the warm-up


def test_warmup_then_cosine_or_linear_decay() -> None:
    from safr_lightning.module import warmup_decay

    cosine, linear = warmup_decay(4, 104, "cosine"), warmup_decay(4, 104, "linear")
    assert [cosine(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert cosine(54) == pytest.approx(0.5) and linear(54) == pytest.approx(0.5)
    assert cosine(104) == pytest.approx(0.0) and linear(104) == pytest.approx(0.0)


# -- Lightning refusing a value we pass ------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        # A fraction of the batches under one batch: Lightning says so only once it sees the data.
        (
            "trainer.limit_train_batches=0.0001",
            "invalid config: trainer.limit_train_batches=0.0001: Lightning refused it: You requested to check 0.0001",
        ),
        # The first keyword named is the culprit; `limit_val_batches` appears in its advice only.
        (
            "+trainer.extra.val_check_interval=1000",
            "invalid config: trainer.extra.val_check_interval=1000: Lightning refused it: `val_check_interval` (1000)",
        ),
        # Not a refusal but a crash inside Lightning's loop, on a keyword only trainer.extra passes.
        (
            "+trainer.extra.check_val_every_n_epoch=0",
            "invalid config: trainer.extra.check_val_every_n_epoch=0: Lightning failed with it: ZeroDivisionError",
        ),
        # Refused while the Trainer is built.
        (
            "+trainer.extra.precision_plugin_that_does_not_exist=1",
            "invalid config: trainer.extra.precision_plugin_that_does_not_exist is not a lightning.Trainer keyword",
        ),
    ],
)
def test_lightning_refusing_a_value_is_one_line_naming_our_key(
    override: str, expected: str, make_cfg: Callable, tmp_path: Path
) -> None:
    from safr_lightning.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        run_training(make_cfg(override), tmp_path / "run")
    message = str(caught.value)
    assert message.startswith(expected) and "\n" not in message


def test_a_lightning_error_that_names_no_key_of_ours_stays_a_bug(
    make_cfg: Callable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lightning.pytorch.trainer.trainer as trainer_module

    def broken(self: Any, *args: Any, **kwargs: Any) -> None:
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr(trainer_module.Trainer, "_run", broken)
    with pytest.raises(ValueError, match="an internal inconsistency"):
        run_training(make_cfg(), tmp_path / "run")


def test_a_search_trial_is_tagged_with_its_number(make_cfg: Callable, monkeypatch: pytest.MonkeyPatch) -> None:
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from safr_lightning import experiment

    cfg = make_cfg()
    assert not [t for t in experiment.run_tags(cfg) if t.startswith(("search=", "trial="))]
    monkeypatch.setattr(experiment, "_hydra_choice", lambda group: "pareto" if group == "hparams_search" else None)
    monkeypatch.setattr(HydraConfig, "get", staticmethod(lambda: OmegaConf.create({"job": {"num": 7}})))
    assert {"search=pareto", "trial=7"} <= set(experiment.run_tags(cfg))
