"""train.log: held in memory until the run claims its dir, then written; one warning on a full disk."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from safr_lightning.config import register_configs
from safr_lightning.runlog import RunLogHandler, open_run_logs
from tests.conftest import CONF


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("safr", logging.INFO, __file__, 1, message, None, None)


def test_records_wait_until_the_dir_is_claimed_then_go_to_the_file_in_order(tmp_path: Path) -> None:
    path = tmp_path / "train.log"
    handler = RunLogHandler(str(path))
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.emit(_record("before 1"))
    handler.emit(_record("before 2"))
    assert not path.exists()  # a refused job leaves no log file behind
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        open_run_logs()
        handler.emit(_record("after"))
        handler.flush()
        assert path.read_text().splitlines() == ["before 1", "before 2", "after"]
    finally:
        root.removeHandler(handler)
        handler.close()


def test_a_failing_write_warns_once_and_logging_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    handler = RunLogHandler(str(tmp_path / "no-such-dir" / "train.log"))  # opening it fails
    handler.open()
    handler.emit(_record("a"))
    handler.emit(_record("b"))
    err = capsys.readouterr().err
    assert err.count("warning: cannot write") == 1 and "Traceback" not in err


@pytest.mark.parametrize("choice", [None, "stdout", "disabled", "none"])
def test_every_job_logging_choice_configures(choice: str | None, tmp_path: Path) -> None:
    """The run log is a config group option of its own: Hydra's other options still work."""
    import logging.config

    register_configs()
    overrides = [f"hydra.run.dir={tmp_path}"] + ([f"hydra/job_logging={choice}"] if choice else [])
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    OmegaConf.resolve(cfg.hydra)
    spec = OmegaConf.to_container(cfg.hydra.job_logging, resolve=False)
    assert isinstance(spec, dict)
    if choice is None:
        assert spec["handlers"]["file"]["class"] == "safr_lightning.runlog.RunLogHandler"
    if spec.get("root") is None:
        return
    before = logging.getLogger().handlers[:]
    try:
        logging.config.dictConfig(spec)
    finally:
        for handler in logging.getLogger().handlers[:]:
            if handler not in before:
                logging.getLogger().removeHandler(handler)
                handler.close()
        for handler in before:
            if handler not in logging.getLogger().handlers:
                logging.getLogger().addHandler(handler)
