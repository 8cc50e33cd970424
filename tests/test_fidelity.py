"""The fidelity group: presets, the mode label written into results.json, validation, a whole paper run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from safr_lightning.config import validate
from safr_lightning.errors import ConfigError
from safr_lightning.evaluate import run_evaluation
from safr_lightning.experiment import run_training
from safr_lightning.fidelity import fidelity_label, fidelity_record, preset, shared_keys, tracked_keys
from safr_lightning.module import SAFRModule
from tests.conftest import TINY
from tests.test_evaluate import compose_config


def test_default_is_exact_and_paper_sets_every_departure(make_cfg: Callable) -> None:
    exact, paper = make_cfg(), make_cfg("fidelity=paper")
    assert fidelity_label(exact) == "exact" and fidelity_label(paper) == "paper"
    for key, value in preset("paper").items():
        assert OmegaConf.select(paper, key) == value, key
    assert paper.fidelity.fixed_padding and paper.fidelity.pool_over_pad and paper.fidelity.test_on == "last"
    assert not paper.data.bucketing and not paper.dataset.lowercase


def test_paper_preset_overrides_the_dataset_tokenizer_keys(make_cfg: Callable) -> None:
    """IMDB's own yaml strips <br />; the paper's code keeps it (str.split(), nothing removed)."""
    exact, paper = make_cfg("dataset=imdb", tiny=False), make_cfg("dataset=imdb", "fidelity=paper", tiny=False)
    assert exact.dataset.strip_html_breaks and exact.dataset.carve == "stratified"
    assert not paper.dataset.strip_html_breaks and paper.dataset.carve == "per_class_head"
    assert paper.dataset.max_len == 256


@pytest.mark.parametrize(
    ("overrides", "label"),
    [
        (["fidelity=paper", "fidelity.pool_over_pad=false"], "paper, pool_over_pad=false"),
        (["fidelity=paper", "fidelity.init=exact", "fidelity.test_on=best"], "paper, init=exact, test_on=best"),
        (["fidelity=paper", "dataset.lowercase=true"], "paper, dataset.lowercase=true"),
        (["data.bucketing=false"], "exact, data.bucketing=false"),
        (["fidelity.fixed_padding=true"], "exact, fixed_padding=true"),
    ],
)
def test_label_names_every_key_switched_away_from_the_preset(
    make_cfg: Callable, overrides: list[str], label: str
) -> None:
    assert fidelity_label(make_cfg(*overrides)) == label


def test_record_holds_every_tracked_key(make_cfg: Callable) -> None:
    record = fidelity_record(make_cfg("fidelity=paper", "fidelity.init=exact"))
    assert record["mode"] == "paper, init=exact" and record["preset"] == "paper"
    assert {k.removeprefix("fidelity.") for k in tracked_keys()} <= set(record)
    assert shared_keys() <= set(tracked_keys())


def test_a_config_from_before_fidelity_counts_as_exact() -> None:
    old = OmegaConf.create({"dataset": {"name": "sst2", "lowercase": True}, "data": {"bucketing": True}})
    assert fidelity_label(old) == "exact"
    assert fidelity_record(old)["pool_over_pad"] is False


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["fidelity.pool_over_pad=true"], "fidelity.pool_over_pad=True; allowed: false unless fidelity.fixed_padding"),
        (["fidelity.regularizers=paper"], "fidelity.regularizers='paper'; allowed: exact unless"),
        (["fidelity.init=kaiming"], "fidelity.init='kaiming'; allowed: exact | paper"),
        (["fidelity.test_on=first"], "fidelity.test_on='first'; allowed: best | last"),
        (["fidelity.pad_embedding=random"], "fidelity.pad_embedding='random'; allowed: zero | trained"),
        (["fidelity.name=mine"], "fidelity.name='mine'; allowed: exact | paper"),
        (["dataset.carve=random"], "dataset.carve='random'; allowed: stratified | per_class_head"),
    ],
)
def test_bad_fidelity_values_fail_in_one_line(make_cfg: Callable, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("|", r"\|")) as info:
        validate(make_cfg(*overrides))
    assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A tiny paper-mode run (3 epochs, max_len 24) whose test covers the whole test split."""
    run_dir = tmp_path_factory.mktemp("paper-run")
    cfg = compose_config(
        "train",
        [
            *TINY,
            "fidelity=paper",
            "dataset.max_len=24",
            "trainer.max_epochs=3",
            "trainer.limit_test_batches=null",
        ],
    )
    cfg.data.cache_dir = str(run_dir.parent / "hf-cache")
    return run_dir, run_training(cfg, run_dir)


def test_paper_run_tests_the_last_epoch_and_records_its_fidelity(paper_run: tuple[Path, dict]) -> None:
    run_dir, results = paper_run
    assert results["status"] == "ok"
    assert results["checkpoint"] == "checkpoints/last.ckpt"
    assert results["fidelity"]["mode"] == "paper" and results["fidelity"]["fixed_padding"] is True
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["fidelity"] == results["fidelity"] and saved["machine"]["torch"] == torch.__version__


def test_paper_checkpoint_restores_paper_model_and_encode_pads_to_max_len(paper_run: tuple[Path, dict]) -> None:
    run_dir, _ = paper_run
    module = SAFRModule.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt", map_location="cpu").eval()
    assert module.model.fixed_length == 24 and module.model.pool_over_pad and module.model.pad_is_token
    batch = module.encode(["a b", "c"])
    assert batch["input_ids"].shape == (2, 24)
    assert int(batch["attention_mask"].sum()) == len(module.tokenizer.encode("a b").ids) + 1
    out = module.model(batch["input_ids"], batch["attention_mask"], return_trace=True)
    assert out.trace["fc1"].shape[:2] == (2, 24)


def test_evaluate_reproduces_the_paper_runs_own_test_numbers(paper_run: tuple[Path, dict]) -> None:
    run_dir, results = paper_run
    again = run_evaluation(compose_config("evaluate", [f"ckpt_path={run_dir}"]))
    assert again["checkpoint"].endswith("last.ckpt")
    for key in ("acc", "acc_capacity", "acc_random", "srs", "capacity"):
        assert again["test"][key] == pytest.approx(results["test"][key], abs=1e-9), key
    assert again["fidelity"]["mode"] == "paper"


def test_evaluating_the_best_checkpoint_of_a_paper_run_is_named_and_labelled_apart(
    paper_run: tuple[Path, dict],
) -> None:
    run_dir, _ = paper_run
    best = run_evaluation(compose_config("evaluate", [f"ckpt_path={run_dir}/checkpoints/best.ckpt"]))
    assert best["fidelity"]["mode"] == "paper, test_on=best"
    written = json.loads((run_dir / "evaluation_best.json").read_text())
    assert written["fidelity"]["mode"] == "paper, test_on=best"


def test_explain_on_a_paper_run_follows_its_fidelity(
    paper_run: tuple[Path, dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """explain picks the tested (last) checkpoint of the run and pads to its max_len like the model."""
    from safr_lightning.explain import run_explain
    from safr_lightning.metrics.superposition import capacity
    from tests.test_explain import explain_cfg, token_rows

    run_dir, _ = paper_run
    cfg = explain_cfg(f"ckpt_path={run_dir}", "texts=[good kaba naba,bad]", "split=test", "max_texts=16",
                      "formats=[png]", "dpi=40", f"out_dir={tmp_path / 'out'}")  # fmt: skip
    result = run_explain(cfg)
    assert result["checkpoint"].name == "last.ckpt"
    tables = token_rows(capsys.readouterr().out)
    module = SAFRModule.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt", map_location="cpu").eval()
    batch = module.encode(["good kaba naba", "bad"])
    with torch.no_grad():
        trace = module.model(batch["input_ids"], batch["attention_mask"], return_trace=True).trace
    expected = capacity(trace["fc1"], batch["attention_mask"])
    assert [len(t) for t in tables] == [3, 1]
    for b, table in enumerate(tables):
        for index, cap, _, _, _ in table:
            assert cap == pytest.approx(float(expected[b, index - 1]), abs=5e-5)
    assert (tmp_path / "out" / "important_vs_rest.png").stat().st_size > 1_000


@pytest.mark.parametrize(
    ("mode", "short"),
    [
        ("paper, fixed_padding=false, pad_embedding=zero, pool_over_pad=false, regularizers=exact, init=exact",
         "paper, init=exact, padding=exact"),
        ("exact, fixed_padding=true, pad_embedding=trained, pool_over_pad=true, regularizers=paper",
         "exact, padding=paper"),
        ("paper, pool_over_pad=false", "paper, pool_over_pad=false"),  # part of a group stays as it is
        ("exact", "exact"),
    ],
)  # fmt: skip
def test_short_label_names_a_group_switched_together_once(mode: str, short: str) -> None:
    from safr_lightning.fidelity import short_label

    assert short_label(mode) == short
