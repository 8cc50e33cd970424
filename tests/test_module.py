from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from safr_lightning.errors import NonFiniteLossError
from safr_lightning.experiment import run_training


def test_nan_loss_stops_training_naming_step_and_term(make_cfg: Callable, tmp_path: Path) -> None:
    with pytest.raises(NonFiniteLossError, match=r"global step 1 in .*loss_ce.*loss"):
        run_training(make_cfg("optim.lr=1e10"), tmp_path)  # the first update blows the weights up


def test_nan_check_every_n_steps_still_reports_the_first_bad_step(make_cfg: Callable, tmp_path: Path) -> None:
    with pytest.raises(NonFiniteLossError, match="global step 1") as info:
        run_training(make_cfg("optim.lr=1e10", "trainer.nan_check_every=3"), tmp_path)  # read at step 2
    assert info.value.step == 1
    assert not torch.isfinite(torch.tensor(info.value.terms["loss"]))
