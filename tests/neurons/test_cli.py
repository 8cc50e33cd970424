"""``python -m safr_lightning.neurons`` and ``python -m safr_lightning.neurons.compare`` end to end on the tiny run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from safr_lightning.config import register_configs
from safr_lightning.errors import ConfigError
from safr_lightning.neurons.__main__ import run_neurons
from safr_lightning.neurons.compare import compare
from tests.conftest import CONF, REPO, SUBPROCESS_ENV


def neurons_config(*overrides: str) -> DictConfig:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("neurons", overrides=list(overrides))


def test_neurons_json_and_figures_of_a_checkpoint(tiny_run: Path, tiny_module, tmp_path: Path) -> None:
    record = run_neurons(neurons_config(f"ckpt_path={tiny_run}", f"out_dir={tmp_path}", "top_k=8", "show_neurons=2"))
    written = json.loads((tmp_path / "neurons.json").read_text())
    assert written["summary"] == record["summary"]
    per = written["per_neuron"]
    clusters = np.array(per["clusters"])
    assert len(clusters) == written["neurons"] == tiny_module.hparams.model["d_ff"] and written["dead"] == int(
        (clusters == 0).sum()
    )
    assert ((clusters >= 0) & (clusters <= 8)).all() and (np.array(per["examples"]) <= 8).all()
    live = clusters > 0
    assert written["summary"]["live"]["neurons"] == int(live.sum())
    assert written["summary"]["live"]["clusters_mean"] == pytest.approx(clusters[live].mean())
    assert written["summary"]["important"]["neurons"] == sum(per["important"])  # the tiny run has VMASK
    assert set(written["by_threshold"]) == {"0.3", "0.5", "0.7", "0.8", "0.9"}
    assert (tmp_path / "clusters_per_neuron.png").is_file() and (tmp_path / "neuron_examples.png").is_file()


def test_compare_pools_seeds_of_one_model_into_one_row(tiny_run: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        run_neurons(neurons_config(f"ckpt_path={tiny_run}", f"out_dir={tmp_path / name}", "top_k=6", "show_neurons=0"))
    written = compare([tmp_path / "a", tmp_path / "b" / "neurons.json"], tmp_path / "cmp")
    table = (tmp_path / "cmp" / "neurons_comparison.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| safr")]
    assert len(rows) == 2 and rows[0].split(" | ")[1] == "2"  # one row (and one sweep row) for both runs
    assert {p.name for p in written} >= {"neurons_comparison.md", "neurons_comparison.png"}


@pytest.mark.parametrize(
    ("override", "message"),
    [("threshold=2", "threshold=2.0"), ("top_k=0", "top_k=0"), ("split=train", "split='train'"),
     ("formats=[gif]", r"formats=\['gif'\]"), ("sweep_thresholds=[0.5,-1]", "sweep_thresholds=")],
)  # fmt: skip
def test_bad_values_are_one_config_error(tiny_run: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"invalid config: {message}"):
        run_neurons(neurons_config(f"ckpt_path={tiny_run}", override))


def test_the_cli_fails_in_one_line_without_a_checkpoint() -> None:
    proc = subprocess.run([sys.executable, "-m", "safr_lightning.neurons"], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **SUBPROCESS_ENV}, timeout=120)  # fmt: skip
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "error: ckpt_path is required: give ckpt_path=<a .ckpt file or a run directory>"
    ]
