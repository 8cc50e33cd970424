"""Bad toy config values stop with one line naming the key."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from safr_lightning.errors import ConfigError
from safr_lightning.toy.config import ToyConfig, validate


def test_the_default_config_is_valid() -> None:
    validate(OmegaConf.structured(ToyConfig))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("toy.n_hidden", 0),
        ("toy.n_features", 5),  # not > n_hidden (5)
        ("toy.sparsities", [0.0, 1.0]),
        ("toy.sparsities", [-0.1]),
        ("toy.sparsities", []),
        ("toy.decays", [0.0]),
        ("toy.decays", [1.5]),
        ("toy.penalty", [-0.1]),
        ("toy.penalty", [float("inf")]),
        ("toy.penalty", [float("nan")]),
        ("toy.steps", 0),
        ("toy.batch_size", -1),
        ("toy.lr", 0.0),
        ("toy.lr_schedule", "linear"),
        ("toy.bar_decay", 0.5),
        ("toy.bar_sparsities", [0.3]),
        ("seed", -1),
        ("formats", ["gif"]),
    ],
)
def test_an_out_of_range_value_is_one_line_naming_its_key(key: str, value: object) -> None:
    cfg = OmegaConf.structured(ToyConfig)
    OmegaConf.update(cfg, key, value)
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"invalid config: {key}=")
