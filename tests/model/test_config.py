from __future__ import annotations

import dataclasses

import pytest

from safr_lightning.errors import SAFRError
from safr_lightning.model.config import ModelConfig, VMaskConfig, typed
from safr_lightning.model.transformer import SAFRTransformer


def test_a_saved_dict_becomes_the_dataclass_and_missing_keys_take_defaults() -> None:
    saved = {"name": "baseline", "vmask": False, "d_model": 32}  # an older checkpoint without newer keys
    config = typed(ModelConfig, saved)
    assert config == dataclasses.replace(ModelConfig(), name="baseline", vmask=False, d_model=32)


def test_an_unknown_saved_key_is_one_line_naming_it() -> None:
    with pytest.raises(SAFRError, match=r"^the checkpoint's VMaskConfig has key 'temperature'") as info:
        typed(VMaskConfig, {"hidden": 8, "temperature": 2.0})
    assert "\n" not in str(info.value)


def test_the_model_is_built_from_its_config_under_the_same_names() -> None:
    model = SAFRTransformer.from_config(
        ModelConfig(d_model=16, n_heads=4, d_ff=24, n_layers=2, vmask=True), VMaskConfig(hidden=8),
        vocab_size=30, num_classes=3,
    )  # fmt: skip
    assert model.d_model == 16 and model.n_heads == 4 and len(model.blocks) == 2
    assert model.blocks[0].fc1.out_features == 24 and model.vmask is not None
    assert model.classifier.out_features == 3
