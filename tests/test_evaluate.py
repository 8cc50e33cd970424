from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from safr_lightning.config import register_configs
from safr_lightning.errors import ConfigError, SAFRError
from safr_lightning.evaluate import default_output_name, run_evaluation
from safr_lightning.experiment import run_training
from tests.conftest import CONF, REPO, SUBPROCESS_ENV, TINY


def compose_config(name: str, overrides: list[str]) -> DictConfig:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(name, overrides=overrides)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A tiny synthetic run whose test SRS covers the whole test split (no limit_test_batches)."""
    run_dir = tmp_path_factory.mktemp("run")
    cfg = compose_config("train", [*TINY, "trainer.limit_test_batches=null"])
    with open_dict(cfg):
        cfg.data.cache_dir = str(run_dir.parent / "hf-cache")
    return run_dir, run_training(cfg, run_dir)


def evaluate(*overrides: str) -> dict[str, Any]:
    return run_evaluation(compose_config("evaluate", list(overrides)))


def test_evaluate_reproduces_the_runs_test_block_and_writes_evaluation_json(
    trained_run: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture
) -> None:
    run_dir, results = trained_run
    evaluation = evaluate(f"ckpt_path={run_dir}")  # a run directory finds its best checkpoint
    written = json.loads((run_dir / "evaluation.json").read_text())
    assert written["test"]["srs"] == evaluation["test"]["srs"]
    assert evaluation["checkpoint"] == str(run_dir / results["checkpoint"])
    assert evaluation["dataset"] == "synthetic" and evaluation["lambda"] == results["lambda"]
    test = evaluation["test"]
    assert test["n"] == results["test"]["n"] == 64
    assert test["acc"] == pytest.approx(results["test"]["acc"], abs=1e-6)
    for name in ("acc_capacity", "acc_random", "srs", "gap", "comprehensiveness", "sufficiency"):
        assert test[name] == pytest.approx(results["test"][name], abs=1e-6), name
    printed = capsys.readouterr().out
    assert "Acc_S" in printed and "srs" in printed and "evaluation.json" in printed


def test_evaluate_with_another_scorer_dataset_and_limit(trained_run: tuple[Path, dict[str, Any]]) -> None:
    run_dir, _ = trained_run
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    evaluation = evaluate(f"ckpt_path={ckpt}", "srs.scorer=attention", "srs.ks=[20,40]", "dataset=synthetic",
                          "limit=10", "split=validation")  # fmt: skip
    assert evaluation["split"] == "validation" and evaluation["val"]["n"] == 10
    assert evaluation["val"]["scorer"] == "attention" and list(evaluation["val"]["srs"]) == ["20", "40"]
    assert (run_dir / "evaluation_attention_validation_synthetic_first10_k20-40.json").is_file()


def test_default_output_name_keeps_non_default_settings_apart() -> None:
    assert default_output_name(compose_config("evaluate", [])) == "evaluation.json"
    assert default_output_name(compose_config("evaluate", ["srs.scorer=vmask"])) == "evaluation_vmask.json"
    assert default_output_name(compose_config("evaluate", ["srs.layer=fc2"])) == "evaluation_capacity-fc2.json"


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        (["srs.ks=[10,30]"], "evaluation_k10-30.json"),
        (["srs.random_draws=5"], "evaluation_draws5.json"),
        (["srs.seed=1"], "evaluation_seed1.json"),
        (["srs.scorer=attention", "srs.ks=[30]", "srs.seed=2"], "evaluation_attention_k30_seed2.json"),
    ],
)
def test_every_setting_that_changes_the_numbers_is_in_the_file_name(overrides: list[str], name: str) -> None:
    """A partial curve (srs.ks=[10,30]) once overwrote the full evaluation.json."""
    assert default_output_name(compose_config("evaluate", overrides)) == name


def test_an_unwritable_output_is_refused_before_the_evaluation(
    trained_run: tuple[Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import safr_lightning.evaluate as evaluate_module

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(evaluate_module, "evaluate_srs", lambda *a, **k: pytest.fail("evaluated before checking"))
    with pytest.raises(ConfigError, match=r"cannot write the evaluation \(evaluation.json\).*is a file"):
        evaluate(f"ckpt_path={trained_run[0]}", f"output={blocker}/evaluation.json")


def test_a_dataset_with_other_classes_than_the_model_is_refused(trained_run: tuple[Path, dict[str, Any]]) -> None:
    with pytest.raises(ConfigError, match=r"dataset.num_classes=3, but the checkpoint's model has 2 classes"):
        evaluate(f"ckpt_path={trained_run[0]}", "dataset=synthetic", "dataset.num_classes=3")


def test_data_mostly_unknown_to_the_vocabulary_is_warned_about(
    trained_run: tuple[Path, dict[str, Any]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "test"):
        (data / f"{split}.csv").write_text("text,label\n" + "".join(f"zzq{i} yyx{i},{i % 2}\n" for i in range(20)))
    evaluate(f"ckpt_path={trained_run[0]}", "dataset=local", f"dataset.local_dir={data}", f"output={tmp_path}/e.json")
    assert "100% of the tokens are unknown to" in caplog.text


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ([], "ckpt_path is required"),
        (["ckpt_path=/nonexistent/best.ckpt"], "ckpt_path='/nonexistent/best.ckpt'"),
        (["ckpt_path=x", "srs.scorer=loudness"], "srs.scorer='loudness'"),
        (["ckpt_path=x", "srs.ks=[0,30]"], "srs.ks"),
        (["ckpt_path=x", "split=train"], "split='train'"),
    ],
)
def test_bad_input_is_one_config_error(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        evaluate(*overrides)


def test_a_file_that_is_not_a_checkpoint_is_reported(tmp_path: Path) -> None:
    bogus = tmp_path / "best.ckpt"
    bogus.write_text("not a checkpoint")
    with pytest.raises(SAFRError, match=f"ckpt_path={bogus}: not a readable checkpoint"):
        evaluate(f"ckpt_path={bogus}")


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **SUBPROCESS_ENV}
    return subprocess.run([sys.executable, "-m", "safr_lightning.evaluate", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.mark.slow
def test_cli_evaluates_a_checkpoint_and_prints_the_table(
    trained_run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    run_dir, _ = trained_run
    out = tmp_path / "eval.json"
    proc = cli(f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}", f"output={out}", "srs.scorer=vmask")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Acc_S" in proc.stdout and f"wrote {out}" in proc.stdout
    assert json.loads(out.read_text())["test"]["scorer"] == "vmask"
    assert not list(REPO.glob("evaluate.log")), "evaluate must not leave logs in the working directory"


@pytest.mark.slow
def test_cli_error_is_one_line_with_exit_code_2(tmp_path: Path) -> None:
    proc = cli(f"ckpt_path={tmp_path / 'missing.ckpt'}")
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: invalid config: ckpt_path=")
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_cli_goes_through_the_one_line_error_path(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "results.json").write_text("{not json")
    proc = cli(f"ckpt_path={run_dir}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: {run_dir / 'results.json'} is unreadable (")
    typo = cli("ckpt_path=x", "srs.scorer=loud", "--verbose")  # --verbose is accepted: the traceback shows
    assert typo.returncode != 0 and "Traceback" in typo.stderr and "srs.scorer='loud'" in typo.stderr
    unknown = cli("ckpt_path=x", "srs.foo=1")
    assert unknown.returncode == 2 and len(unknown.stderr.strip().splitlines()) == 1
    assert unknown.stderr.startswith("error: invalid config: unknown key srs.foo")


@pytest.mark.parametrize("override", ["foo=1", "limit=abc", "srs.random_draws=1.5"])
def test_evaluate_keys_are_typed(override: str) -> None:
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        compose_config("evaluate", [override])


def test_an_output_that_is_a_directory_and_a_json_ckpt_are_one_line(
    trained_run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"output=.* is a directory; give a file"):
        evaluate(f"ckpt_path={trained_run[0]}", f"output={tmp_path}")
    with pytest.raises(SAFRError, match=r"results.json: not a readable checkpoint") as caught:
        evaluate(f"ckpt_path={trained_run[0] / 'results.json'}")
    assert "weights_only" not in str(caught.value)  # not torch's advice to unpickle untrusted files
