from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import hydra
import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig
from omegaconf.errors import ConfigAttributeError

from safr_lightning import train
from safr_lightning.cli import EXIT_USER_ERROR, FULL_ERROR_ENV, run_cli, user_message
from safr_lightning.config import register_configs
from safr_lightning.errors import DataError
from tests.conftest import CONF


def composition_error(*overrides: str) -> Exception:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        try:
            compose("train", overrides=list(overrides))
        except Exception as exc:
            return exc
    raise AssertionError(f"{overrides} composed without an error")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "model.d_modle=64",
            "invalid config: unknown key model.d_modle (model.d_modle=64); allowed keys in model: name, "
            "vmask, d_model, n_heads, d_ff, n_layers, dropout, compile; did you mean model.d_model?",
        ),
        ("sed=1", "invalid config: unknown key sed (sed=1); allowed keys at the top level: seed, dataset,"),
        ("lambda.imp=abc", "invalid config: lambda.imp='abc'; allowed: a number"),
        ("trainer.max_epochs=1.5", "invalid config: trainer.max_epochs=1.5; allowed: an integer"),
        ("data.batch_size=null", "invalid config: data.batch_size=null; allowed: an integer"),
        ("logger.entity=[a]", "invalid config: logger.entity=['a']; allowed: a string or null"),
        ("model=nope", "invalid config: model=nope; allowed: baseline | safr"),
        ("srs.ks=[10,", "invalid override 'srs.ks=[10,': "),
    ],
)
def test_composition_errors_become_one_line(override: str, message: str) -> None:
    text = user_message(composition_error(override))
    assert text is not None and text.startswith(message) and "\n" not in text


def test_user_errors_are_one_line_and_bugs_keep_their_traceback() -> None:
    assert user_message(DataError("file x.parquet\nis broken")) == "file x.parquet is broken"
    assert user_message(ValueError("a bug")) is None
    # OmegaConf errors are the user's while composing, the code's once the task runs.
    inside = ConfigAttributeError("Key 'nope' is not in struct")
    assert user_message(inside, inside_task=True) is None


def test_run_cli_prints_one_line_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv(FULL_ERROR_ENV, raising=False)
    monkeypatch.setattr(sys, "argv", ["train", "lambda.imp=abc", f"hydra.run.dir={tmp_path}"])
    with pytest.raises(SystemExit) as stop:
        run_cli(train._hydra_main)
    assert stop.value.code == EXIT_USER_ERROR
    assert capsys.readouterr().err == "error: invalid config: lambda.imp='abc'; allowed: a number\n"
    assert FULL_ERROR_ENV not in os.environ  # only set while Hydra runs


def test_verbose_keeps_hydras_exception(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(FULL_ERROR_ENV, raising=False)
    monkeypatch.setattr(sys, "argv", ["train", "--verbose", "lambda.imp=abc", f"hydra.run.dir={tmp_path}"])
    with pytest.raises(ConfigCompositionException):
        run_cli(train._hydra_main)


@hydra.main(version_base="1.3", config_path=str(CONF), config_name="train")
def _buggy_task(cfg: DictConfig) -> Any:
    return cfg.model.no_such_key  # a bug in the code, not the user's config


def test_a_bug_inside_the_task_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    register_configs()
    monkeypatch.delenv(FULL_ERROR_ENV, raising=False)
    monkeypatch.setattr(sys, "argv", ["task", f"hydra.run.dir={tmp_path}", "hydra/job_logging=none"])
    with pytest.raises(ConfigAttributeError):
        run_cli(_buggy_task)


def test_an_unquoted_value_with_spaces_gets_a_quoting_hint() -> None:
    text = user_message(composition_error("dataset.local_dir=/tmp/dir with spaces/ünï ✓"))
    assert text is not None and "\n" not in text
    assert text.endswith("(quote a value with spaces or special characters: key='a b c')")


def test_help_lists_the_groups_their_options_and_the_common_commands() -> None:
    import subprocess
    import sys

    from tests.conftest import REPO, SUBPROCESS_ENV

    env = {**__import__("os").environ, **SUBPROCESS_ENV}
    proc = subprocess.run([sys.executable, "-m", "safr_lightning.train", "--help"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0
    assert "dataset: imdb, local, sst2, synthetic" in proc.stdout and "fidelity: exact, paper" in proc.stdout
    assert "python -m safr_lightning.train -m +sweep=paper dataset=sst2" in proc.stdout


def test_run_main_reports_a_missing_file_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from safr_lightning.cli import run_main

    def body() -> int:
        raise FileNotFoundError("README block results:x has no docs/results/x.json")  # no errno, no filename

    assert run_main(body) == EXIT_USER_ERROR
    assert capsys.readouterr().err == "error: README block results:x has no docs/results/x.json\n"
