"""conf/sweep/ and conf/row/: the paper's grid, what a command line does to it, where it lands."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from safr_lightning.config import register_configs, validate
from safr_lightning.errors import ConfigError
from safr_lightning.sweep.jobs import expected_jobs, override_dict
from safr_lightning.sweep.paper_tables import TABLE6_ROWS
from tests.conftest import CONF


def hydra_cfg(*overrides: str) -> DictConfig:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def expand(tmp_path: Path, *overrides: str) -> list:
    """The jobs ``-m`` with these overrides launches: its master config (composed, as Hydra does, without
    the sweeping overrides; the command line kept whole) saved as multirun.yaml, then expanded."""
    master = hydra_cfg(*(o for o in overrides if "," not in o))
    master.hydra.overrides.task = list(overrides)
    OmegaConf.save(master, tmp_path / "multirun.yaml")
    jobs = expected_jobs(tmp_path)
    assert jobs is not None
    return jobs


def test_paper_rows_compose_to_table6_in_its_order(make_cfg: Callable) -> None:
    rows = str(OmegaConf.load(CONF / "sweep" / "paper.yaml").hydra.sweeper.params["+row"]).split(",")
    composed = []
    for name in (r.strip() for r in rows):
        cfg = make_cfg(f"+row={name}")
        validate(cfg)
        composed.append((cfg.model.name, cfg["lambda"].imp, cfg["lambda"].inter))
        assert cfg.model.vmask == (cfg.model.name == "safr")
    assert composed == list(TABLE6_ROWS)


def test_paper_sweep_is_14_rows_by_3_seeds_by_2_datasets(tmp_path: Path) -> None:
    jobs = expand(tmp_path, "+sweep=paper")
    assert len(jobs) == 84
    combos = {(d["dataset"], d["seed"], d["row"]) for d in (override_dict(j.overrides) for j in jobs)}
    assert (
        len(combos) == 84 and {c[0] for c in combos} == {"sst2", "imdb"} and {c[1] for c in combos} == {"0", "1", "2"}
    )
    assert [j.dataset for j in jobs[:42]] == ["sst2"] * 42  # a sweep cut short has whole tables first


def test_command_line_overrides_replace_the_sweeps_dimensions(tmp_path: Path) -> None:
    jobs = expand(tmp_path, "+sweep=paper", "dataset=synthetic", "seed=0", "trainer.max_epochs=1")
    assert len(jobs) == 14
    assert all({"dataset=synthetic", "seed=0", "trainer.max_epochs=1"} <= set(j.overrides) for j in jobs)
    jobs = expand(tmp_path, "+sweep=paper", "+row=baseline,imp1_inter1", "seed=3,4", "dataset=imdb")
    assert sorted(override_dict(j.overrides)["row"] for j in jobs) == ["baseline"] * 2 + ["imp1_inter1"] * 2


def test_grid_sweep_is_the_full_lambda_product(tmp_path: Path) -> None:
    jobs = expand(tmp_path, "+sweep=grid", "dataset=sst2", "seed=0")
    pairs = {(override_dict(j.overrides)["lambda.imp"], override_dict(j.overrides)["lambda.inter"]) for j in jobs}
    values = ["0", "0.01", "0.1", "1", "100"]
    assert len(jobs) == 25 and pairs == {(a, b) for a in values for b in values}
    assert len(expand(tmp_path, "+sweep=grid")) == 150


def test_sweep_name_names_the_folder_and_the_launch_the_wandb_group(make_cfg: Callable) -> None:
    # The group is set per launch at run time (tests/test_wandb.py); the config leaves it free.
    assert make_cfg("+sweep=paper").logger.group is None and make_cfg("+sweep=paper").sweep_name == "paper"
    assert make_cfg("+sweep=grid", "sweep_name=grid-v2").sweep_name == "grid-v2"
    sweep = hydra_cfg("+sweep=paper").hydra.sweep
    # Microseconds and the launching process: two sweeps started at once never share a folder.
    assert re.fullmatch(rf"multirun/paper/\d{{4}}-\d\d-\d\d/\d\d-\d\d-\d\d-\d{{6}}-p{os.getpid()}", sweep.dir)
    assert OmegaConf.to_container(sweep)["subdir"].startswith("${hydra.job.num}_")


def test_sweep_name_must_be_a_folder_name(make_cfg: Callable) -> None:
    with pytest.raises(ConfigError, match="sweep_name='a b'"):
        validate(make_cfg("sweep_name='a b'"))


def test_slurm_launcher_config_composes_on_submitit(tmp_path: Path) -> None:
    launcher = hydra_cfg("+sweep=paper", "hydra/launcher=slurm", "hydra.launcher.partition=gpu").hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.partition == "gpu" and launcher.gpus_per_node == 1 and launcher.array_parallelism > 0
    joblib = hydra_cfg("hydra/launcher=joblib", "hydra.launcher.n_jobs=2").hydra.launcher
    assert joblib._target_.endswith("JoblibLauncher") and joblib.n_jobs == 2


@pytest.mark.slow
def test_the_smoke_sweep_runs_all_14_rows_into_a_table(tmp_path: Path) -> None:
    from safr_lightning.aggregate import aggregate
    from tests.cli_runs import run_train

    proc = run_train("-m", "+sweep=smoke", f"hydra.sweep.dir={tmp_path}", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = aggregate(tmp_path, figures=False)
    assert len(result.jobs) == 14 and all(job.status == "ok" for job in result.jobs)
    table = (tmp_path / "ablation_synthetic.md").read_text()
    assert "| Baseline |" in table and "λ_imp=100, λ_inter=100" in table
