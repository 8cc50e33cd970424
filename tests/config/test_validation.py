from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf, open_dict

from safr_lightning.config import validate
from safr_lightning.errors import ConfigError


def test_defaults_compose_like_the_paper(make_cfg: Callable) -> None:
    cfg = make_cfg(tiny=False)
    assert cfg.dataset.name == "sst2" and cfg.dataset.max_len == 128
    assert cfg["lambda"].imp == 0.1 and cfg["lambda"].inter == 0.1
    assert cfg.model.vmask and cfg.model.d_model == 256 and cfg.model.d_ff == 1024 and cfg.model.n_heads == 8
    assert cfg.optim.lr == 1e-4 and cfg.data.batch_size == 32
    assert cfg.callbacks.early_stopping.patience == 3 and cfg.trainer.max_epochs == 100
    validate(cfg)


def test_baseline_has_no_vmask_and_no_regularization(make_cfg: Callable) -> None:
    cfg = make_cfg("model=baseline", tiny=False)
    assert not cfg.model.vmask and cfg["lambda"].imp == 0 and cfg["lambda"].inter == 0
    cfg = make_cfg("model=baseline", "lambda.imp=0.5", tiny=False)  # an explicit override still wins
    assert cfg["lambda"].imp == 0.5


def test_imdb_and_experiment_groups(make_cfg: Callable) -> None:
    cfg = make_cfg("dataset=imdb", "lambda.imp=0.1", "lambda.inter=1", tiny=False)
    assert cfg.dataset.max_len == 256 and cfg.dataset.carve_validation and cfg.dataset.val_size == 5000
    assert cfg["lambda"].inter == 1.0
    cfg = make_cfg("experiment=imdb_safr", tiny=False)
    assert cfg.dataset.name == "imdb" and cfg["lambda"].inter == 1.0


@pytest.mark.parametrize("override", ["lambda.imp=abc", "model.foo=1", "dataset=nope", "trainer.max_epochs=1.5"])
def test_wrong_types_and_unknown_keys_fail_at_composition(make_cfg: Callable, override: str) -> None:
    with pytest.raises(ConfigCompositionException):
        make_cfg(override)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("lambda.imp", -0.1, "lambda.imp=-0.1"),
        ("lambda.inter", float("nan"), "lambda.inter=nan"),
        ("srs.ks", [0, 30], "srs.ks"),
        ("srs.ks", [30, 100], "srs.ks"),
        ("dataset.max_len", 0, "dataset.max_len=0"),
        ("model.d_model", 30, "model.d_model=30"),
        ("model.n_layers", 0, "model.n_layers=0"),
        ("srs.scorer", "magic", "srs.scorer='magic'"),
        ("callbacks.figures.n_texts", -1, "callbacks.figures.n_texts=-1"),
        ("callbacks.figures.layer", "fc3", "callbacks.figures.layer='fc3'"),
        ("callbacks.figures.formats", ["png", "gif"], "callbacks.figures.formats"),
        ("lambda.imp", 1e39, "lambda.imp=1e+39; allowed: a finite number >= 0 (at most 3.4e38"),
        ("seed", -1, "seed=-1; allowed: an integer in [0, 4294967295]"),
        ("seed", 2**32, "seed=4294967296"),
        ("optim.weight_decay", -1e-4, "optim.weight_decay=-0.0001"),
        ("trainer.precision", "fp8", "trainer.precision='fp8'"),
        ("trainer.accelerator", "xpu", "trainer.accelerator='xpu'; allowed: auto | cpu | gpu"),
        ("data.num_workers", -1, "data.num_workers=-1"),
        ("model.foo", 1, "unknown key model.foo=1; allowed keys in model: name, vmask, d_model"),
        ("foo", {"bar": 1}, "unknown key foo={'bar': 1}; allowed keys at the top level: seed,"),
        ("model.vmask", False, "srs.scorer='vmask'"),  # with srs.scorer=vmask below
        # What Lightning and the data split accept, checked before any work (each once crashed later).
        ("trainer.limit_train_batches", 0, "trainer.limit_train_batches=0; allowed: null, an integer >= 1"),
        ("trainer.limit_val_batches", 1.5, "trainer.limit_val_batches=1.5"),
        ("trainer.limit_test_batches", -2, "trainer.limit_test_batches=-2"),
        ("trainer.max_steps", 0, "trainer.max_steps=0"),
        ("trainer.max_epochs", -5, "trainer.max_epochs=-5"),
        ("trainer.min_epochs", 200, "trainer.min_epochs=200; allowed: an integer in [0, trainer.max_epochs="),
        ("trainer.log_every_n_steps", 0, "trainer.log_every_n_steps=0"),
        ("trainer.num_sanity_val_steps", -3, "trainer.num_sanity_val_steps=-3"),
        ("trainer.gradient_clip_val", -1.0, "trainer.gradient_clip_val=-1.0"),
        ("trainer.fast_dev_run", -1, "trainer.fast_dev_run=-1"),
        ("trainer.devices", 0, "trainer.devices=0"),
        ("trainer.devices", "two", "trainer.devices='two'"),
        ("callbacks.checkpoint.monitor", "val/acc_", "callbacks.checkpoint.monitor='val/acc_'; allowed: val/acc"),
        ("callbacks.checkpoint.mode", "maximum", "callbacks.checkpoint.mode='maximum'; allowed: min | max"),
        ("callbacks.early_stopping.monitor", "val/srs@20", "callbacks.early_stopping.monitor='val/srs@20'"),
        ("callbacks.early_stopping.mode", "up", "callbacks.early_stopping.mode='up'"),
        ("callbacks.early_stopping.min_delta", float("nan"), "callbacks.early_stopping.min_delta=nan"),
        ("callbacks.early_stopping.patience", 0, "callbacks.early_stopping.patience=0"),
        ("dataset.val_size", 1.5, "dataset.val_size=1.5; allowed: a fraction in (0, 1) or a whole count"),
        ("dataset.val_size", 0.0, "dataset.val_size=0.0"),
        ("dataset.split_seed", -1, "dataset.split_seed=-1"),
        ("srs.ks", [10, 30, 30], "; allowed: percentages in (0, 100), each once"),
        ("srs.val_every_n_epochs", 0, "srs.val_every_n_epochs=0; allowed: an integer >= 1"),
        ("srs.seed", 10**23, "srs.seed=100000000000000000000000; allowed: an integer in [0, 4294967295]"),
        ("data.batch_size", 10**20, "data.batch_size=100000000000000000000; allowed: an integer in [1, 2147483647]"),
    ],
)
def test_out_of_range_values_are_named(make_cfg: Callable, key: str, value: object, message: str) -> None:
    cfg = make_cfg("srs.scorer=vmask" if key == "model.vmask" else "srs.scorer=capacity")
    with open_dict(cfg):
        OmegaConf.update(cfg, key, value, force_add=True)
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(cfg)


@pytest.mark.parametrize(
    "override",
    ["trainer.limit_val_batches=0.5", "trainer.limit_train_batches=3", "callbacks.checkpoint.monitor=val/srs@30",
     "callbacks.early_stopping.monitor=val/loss", "trainer.devices=[0]", "trainer.max_epochs=-1",
     "dataset.val_size=500", "run_test=false"],
)  # fmt: skip
def test_loop_values_lightning_accepts_pass(make_cfg: Callable, override: str) -> None:
    cfg = make_cfg(override)
    if override == "trainer.max_epochs=-1":
        cfg.trainer.max_steps = 100
    if override == "run_test=false":
        cfg.trainer.limit_test_batches = 0
    validate(cfg)


def test_local_dataset_needs_a_directory(make_cfg: Callable) -> None:
    with pytest.raises(ConfigError, match=r"dataset.local_dir=None; allowed: a directory"):
        validate(make_cfg("dataset=local"))
    validate(make_cfg("dataset=local", "dataset.local_dir=/some/dir"))


def test_label_map_is_given_on_the_command_line(make_cfg: Callable) -> None:
    cfg = make_cfg("dataset=local", "dataset.local_dir=/x", "dataset.label_map=[neg,pos]", tiny=False)
    assert list(cfg.dataset.label_map) == ["neg", "pos"]
    validate(cfg)
