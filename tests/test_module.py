from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from safr_lightning.errors import NonFiniteLossError
from safr_lightning.experiment import run_training


def test_nan_loss_stops_training_naming_step_and_term(make_cfg: Callable, tmp_path: Path) -> None:
    with pytest.raises(NonFiniteLossError, match=r"global step 0 in .*loss_imp.*loss"):
        run_training(make_cfg("lambda.imp=1e39"), tmp_path)  # finite in Python, inf in fp32


def test_nan_check_every_n_steps_still_reports_the_first_bad_step(make_cfg: Callable, tmp_path: Path) -> None:
    with pytest.raises(NonFiniteLossError, match="global step 0") as info:
        run_training(make_cfg("lambda.imp=1e39", "trainer.nan_check_every=3"), tmp_path)  # read at step 2
    assert info.value.step == 0
    assert not torch.isfinite(torch.tensor(info.value.terms["loss"]))
