from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from safr_lightning.config import register_configs
from safr_lightning.errors import ConfigError, SAFRError
from safr_lightning.explain import _quote_text_override, run_explain
from safr_lightning.metrics.superposition import capacity
from safr_lightning.module import SAFRModule
from tests.conftest import CONF, REPO, SUBPROCESS_ENV

ROW = re.compile(r"^\s+(\d+)\s+([0-9.]+)\s+([0-9.]+)\s+(\S+)(  \[unk\])?$")
TEXTS = ["good kaba Zorbly , naba", "bad"]
FAST = ("formats=[png]", "dpi=40")  # where only the numbers or the files' existence matter


def explain_cfg(*overrides: str) -> DictConfig:
    """Compose conf/explain.yaml as the CLI does (``text=`` taken literally)."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("explain", overrides=_quote_text_override(list(overrides)))


def token_rows(stdout: str) -> list[list[tuple[int, float, float, str, bool]]]:
    """The printed token tables, one list of (index, capacity, keep, token, unknown) per text."""
    tables: list[list[tuple[int, float, float, str, bool]]] = []
    for line in stdout.splitlines():
        if re.match(r"^\[\d+\] ", line):
            tables.append([])
        elif (match := ROW.match(line)) and tables:
            index, cap, keep, token, unk = match.groups()
            tables[-1].append((int(index), float(cap), float(keep), token, unk is not None))
    return tables


@pytest.fixture
def run_copy(tiny_run: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny run (checkpoint only), so that tests may add files to it."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(tiny_run / "checkpoints" / "best.ckpt", run / "checkpoints" / "best.ckpt")
    return run


def test_printed_capacities_and_keep_are_the_metric_values(
    run_copy: Path, tiny_module: SAFRModule, capsys: pytest.CaptureFixture[str]
) -> None:
    run_explain(explain_cfg(f"ckpt_path={run_copy / 'checkpoints' / 'best.ckpt'}", f"texts={json.dumps(TEXTS)}", *FAST))
    tables = token_rows(capsys.readouterr().out)
    batch = tiny_module.encode(TEXTS)
    with torch.no_grad():
        out = tiny_module.model(batch["input_ids"], batch["attention_mask"], return_trace=True)
    expected = capacity(out.trace["fc1"], batch["attention_mask"])
    assert [len(t) for t in tables] == [5, 1]
    for b, table in enumerate(tables):
        for index, cap, keep, _, _ in table:
            assert cap == pytest.approx(float(expected[b, index - 1]), abs=5e-5)
            assert keep == pytest.approx(float(out.trace["vmask_prob"][b, index - 1]), abs=5e-5)


def test_unknown_words_print_as_written_with_a_marker(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_explain(explain_cfg(f"ckpt_path={run_copy}", "text=GOOD Zorbly kaba", *FAST))
    stdout = capsys.readouterr().out
    (table,) = token_rows(stdout)
    assert [(token, unknown) for _, _, _, token, unknown in table] == [
        ("GOOD", False), ("Zorbly", True), ("kaba", False),
    ]  # fmt: skip
    assert re.search(r"prediction: (negative|positive) \(label [01]\), p = 0\.\d{3}", stdout)


def test_explain_writes_figures_into_the_run_dir(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_explain(explain_cfg(f"ckpt_path={run_copy}", "text=good kaba , naba"))
    out = run_copy / "explain"
    assert result["out_dir"] == out
    for name in ("token_graph", "layer_capacity", "layer_interference"):
        for suffix in ("png", "svg"):
            assert (out / f"text1_{name}.{suffix}").stat().st_size > 5_000
    assert not (out / "deletion_curve.png").exists()
    assert "note: no deletion curve drawn" in capsys.readouterr().out


def test_explain_draws_the_runs_deletion_curve(run_copy: Path, tmp_path: Path) -> None:
    test = {
        "acc": 0.8,
        "ks": [10, 30],
        "acc_capacity": {"10": 0.7, "30": 0.6},
        "acc_random": {"10": 0.78, "30": 0.75},
    }
    (run_copy / "results.json").write_text(json.dumps({"status": "ok", "test": test}))
    result = run_explain(explain_cfg(f"ckpt_path={run_copy}", "text=good", f"out_dir={tmp_path / 'figs'}", *FAST))
    assert (tmp_path / "figs" / "deletion_curve.png").stat().st_size > 1_000
    assert result["deletion_source"] == str(run_copy / "results.json")


def test_explain_text_file_and_split_statistics(run_copy: Path, tmp_path: Path, tiny_run: Path) -> None:
    text_file = tmp_path / "texts.txt"
    text_file.write_text("good kaba\n\n  \nbad naba taba\n")
    cfg = explain_cfg(f"ckpt_path={tiny_run / 'checkpoints' / 'best.ckpt'}", f"text_file={text_file}",
                      "split=test", "max_texts=16", *FAST, f"out_dir={tmp_path / 'out'}")  # fmt: skip
    result = run_explain(cfg)
    assert len(result["profiles"]) == 2  # blank lines skipped
    assert (tmp_path / "out" / "text2_token_graph.png").is_file()
    assert (tmp_path / "out" / "important_vs_rest.png").stat().st_size > 1_000


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["text=good"], "ckpt_path is required"),  # the shared rule (safr_lightning.checkpoints)
        (["ckpt_path=/no/such.ckpt", "text=good"], "ckpt_path='/no/such.ckpt'; no checkpoint at /no/such.ckpt"),
        (["ckpt_path=RUN", "text=   "], "text is empty"),
        (["ckpt_path=RUN", "texts=[good,'']"], r"texts\[1\] is empty"),
        (["ckpt_path=RUN"], "nothing to explain"),
        (["ckpt_path=RUN", "text_file=/no/such.txt"], "text_file='/no/such.txt'; no such file"),
        (["ckpt_path=RUN", "text=good", "formats=[gif]"], "explain.formats"),
        (["ckpt_path=RUN", "text=good", "layer=fc3"], "explain.layer='fc3'"),
    ],
)
def test_bad_input_is_one_config_error(run_copy: Path, overrides: list[str], message: str) -> None:
    cfg = explain_cfg(*[o.replace("RUN", str(run_copy)) for o in overrides])
    with pytest.raises(ConfigError, match=message):
        run_explain(cfg)


def test_a_file_that_is_not_a_checkpoint_is_one_error(tmp_path: Path) -> None:
    bogus = tmp_path / "model.ckpt"
    bogus.write_text("not a checkpoint")
    with pytest.raises(SAFRError, match="not a readable checkpoint"):
        run_explain(explain_cfg(f"ckpt_path={bogus}", "text=good"))


def test_text_override_is_quoted_for_hydra() -> None:
    assert _quote_text_override(["text=a , b", "layer=fc1"]) == ["text='a , b'", "layer=fc1"]
    assert _quote_text_override(["text=it's"]) == ["text='it\\'s'"]
    assert _quote_text_override(["text='already'"]) == ["text='already'"]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "safr_lightning.explain", *args],
        cwd=REPO, env={**os.environ, **SUBPROCESS_ENV}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.slow
def test_cli_explains_a_sentence_with_commas(run_copy: Path, tmp_path: Path) -> None:
    # As a shell passes `text="it's good , kaba Zorbly"`: one argument, quotes removed.
    proc = cli(f"ckpt_path={run_copy / 'checkpoints' / 'best.ckpt'}", "text=it's good , kaba Zorbly", *FAST)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (table,) = token_rows(proc.stdout)
    assert [token for *_, token, _ in table] == ["it's", "good", ",", "kaba", "Zorbly"]
    assert table[-1][-1] and not table[1][-1]
    assert (run_copy / "explain" / "text1_token_graph.png").is_file()
    assert not (REPO / "outputs").exists() or not list((REPO / "outputs").glob("**/explain.log"))


@pytest.mark.slow
def test_cli_error_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    proc = cli(f"ckpt_path={tmp_path / 'missing.ckpt'}", "text=good")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "missing.ckpt" in errors[0]


def test_a_text_files_byte_order_mark_is_not_part_of_the_first_word(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from safr_lightning.explain import collect_texts

    path = tmp_path / "texts.txt"
    path.write_text("great film\nawful plot\n", encoding="utf-8-sig")
    cfg = OmegaConf.create({"text": None, "texts": [], "text_file": str(path)})
    assert collect_texts(cfg) == ["great film", "awful plot"]


def test_a_text_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from safr_lightning.errors import ConfigError
    from safr_lightning.explain import collect_texts

    path = tmp_path / "image.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ConfigError, match=r"text_file=.*image.png' is not UTF-8 text"):
        collect_texts(OmegaConf.create({"text": None, "texts": [], "text_file": str(path)}))
