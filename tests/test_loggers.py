"""W&B never costs a run its results: unwritable places are refused up front, an empty mode is unset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from safr_lightning.errors import ConfigError
from safr_lightning.loggers import check_wandb_places
from tests.cli_runs import error_lines, run_train
from tests.conftest import TINY

WANDB = OmegaConf.create({"name": "wandb", "mode": "offline"})


@pytest.fixture
def blocker(tmp_path: Path) -> Path:
    """A file where a directory is needed: unwritable even for root, who passes every permission check."""
    path = tmp_path / "a-file"
    path.write_text("")
    return path


@pytest.mark.parametrize("env", ["WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_DIR"])
def test_an_unwritable_wandb_place_is_one_line(env: str, blocker: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv(env, str(blocker / "wandb"))
    with pytest.raises(ConfigError, match=r"cannot write .*a-file is a file, not a directory"):
        check_wandb_places(WANDB, tmp_path / "run")
    check_wandb_places(OmegaConf.create({"name": "csv", "mode": None}), tmp_path / "run")  # not W&B: no check
    check_wandb_places(OmegaConf.create({"name": "wandb", "mode": "disabled"}), tmp_path / "run")


def test_wandbs_own_places_follow_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blocker: Path) -> None:
    """A read-only HOME with XDG dirs elsewhere (common on clusters) is fine, as it is for W&B."""
    for env in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_DIR"):
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setenv("HOME", str(blocker))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    check_wandb_places(WANDB, tmp_path / "run")


def test_an_unwritable_home_is_one_line(blocker: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for env in (
        "WANDB_CONFIG_DIR",
        "WANDB_CACHE_DIR",
        "WANDB_DATA_DIR",
        "WANDB_DIR",
        "XDG_CACHE_HOME",
        "XDG_DATA_HOME",
    ):
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setenv("HOME", str(blocker))
    with pytest.raises(ConfigError, match=r"set WANDB_CACHE_DIR to a writable directory, or use logger=csv"):
        check_wandb_places(WANDB, tmp_path / "run")


def test_an_empty_wandb_mode_is_read_as_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    monkeypatch.setenv("WANDB_MODE", "")
    check_wandb_places(WANDB, tmp_path / "run")
    assert "WANDB_MODE" not in os.environ and "WANDB_MODE is set but empty" in caplog.text


def test_the_cli_refuses_an_unwritable_wandb_dir_before_training(blocker: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = run_train(*TINY, "logger=wandb", "logger.mode=offline", f"hydra.run.dir={run_dir}",
                     env={"WANDB_CACHE_DIR": str(blocker / "cache"), "WANDB_MODE": None})  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = error_lines(proc)
    assert line.startswith("error: cannot write W&B's files (WANDB_CACHE_DIR)")
    assert not (run_dir / "checkpoints").exists()  # nothing was trained


def test_credentials_are_looked_up_for_the_configured_wandb_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safr_lightning.loggers import has_wandb_credentials

    netrc_file = tmp_path / "netrc"
    netrc_file.write_text("machine wandb.example.org login user password secret\n")
    netrc_file.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc_file))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    assert not has_wandb_credentials()  # api.wandb.ai has no entry
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org")
    assert has_wandb_credentials()  # a self-hosted server's login is found: online, not silently offline
