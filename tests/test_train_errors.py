"""Every bad input to ``python -m safr_lightning.train`` costs one line: ``error: ...``, exit code 2.

One CLI subprocess per bad input (they run side by side, see ``cli_runs.CLIBatch``); each fails
before any training, except a loss that turns NaN, which stops the run at that step. Also: a
failing sweep job is recorded while the sweep goes on, and ``--verbose`` still shows the traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.cli_runs import CLIBatch, error_lines, run_train

BASE = ["debug=tiny", "logger=none"]
SYNTHETIC = ["dataset=synthetic", *BASE]
ROWS = [(f"text number {i} {'good' if i % 2 else 'bad'}", i % 2) for i in range(40)]


@dataclass(frozen=True)
class BadInput:
    name: str
    args: list[str]
    expected: list[str]  # substrings of the one error line
    data: str | None = None  # a prepared data directory (see `data_root`), as dataset.local_dir
    env: dict[str, str] = field(default_factory=dict)  # "{data}" is replaced by the data root
    composed: bool = True  # False: refused before the run starts (composing, validating): no run dir is left
    error: str | None = None  # the error type recorded in results.json, when it matters


CASES = [
    # -- config: Hydra + the structured schema, while composing --------------------------------------
    BadInput("unknown key", [*SYNTHETIC, "model.d_modle=64"],
             ["invalid config: unknown key model.d_modle (model.d_modle=64); allowed keys in model: name,",
              "did you mean model.d_model?"], composed=False),
    BadInput("wrong type (float)", [*SYNTHETIC, "lambda.imp=abc"],
             ["invalid config: lambda.imp='abc'; allowed: a number"], composed=False),
    BadInput("wrong type (int)", [*SYNTHETIC, "trainer.max_epochs=1.5"],
             ["invalid config: trainer.max_epochs=1.5; allowed: an integer"], composed=False),
    BadInput("wrong type (list)", [*SYNTHETIC, "srs.ks=30"],
             ["invalid config: srs.ks=30; allowed: a list of numbers"], composed=False),
    BadInput("malformed override", [*SYNTHETIC, "srs.ks=[10,20"],
             ["invalid override 'srs.ks=[10,20': "], composed=False),
    BadInput("unknown dataset", [*BASE, "dataset=nope"],
             ["invalid config: dataset=nope; allowed: imdb | local | sst2 | synthetic"], composed=False),
    # -- config: ranges, by config.validate, before torch is imported ---------------------------------
    BadInput("key added with +", [*SYNTHETIC, "+model.foo=1"],
             ["invalid config: unknown key model.foo=1; allowed keys in model: name,"], composed=False),
    BadInput("unknown model name", [*SYNTHETIC, "model.name=transformer"],
             ["invalid config: model.name='transformer'; allowed: safr | baseline"], composed=False),
    BadInput("unknown scorer", [*SYNTHETIC, "srs.scorer=magic"],
             ["invalid config: srs.scorer='magic'; allowed: capacity | random | vmask | attention"], composed=False),
    BadInput("negative lambda", [*SYNTHETIC, "lambda.imp=-0.1"],
             ["invalid config: lambda.imp=-0.1; allowed: a finite number >= 0"], composed=False),
    BadInput("NaN lambda", [*SYNTHETIC, "lambda.inter=nan"],
             ["invalid config: lambda.inter=nan; allowed: a finite number >= 0"], composed=False),
    BadInput("lambda beyond float32", [*SYNTHETIC, "lambda.imp=1e39"],
             ["invalid config: lambda.imp=1e+39; allowed: a finite number >= 0 (at most 3.4e38"], composed=False),
    BadInput("k = 0", [*SYNTHETIC, "srs.ks=[0,30]"],
             ["invalid config: srs.ks=[0.0, 30.0]; allowed: percentages strictly between 0 and 100"], composed=False),
    BadInput("k = 100", [*SYNTHETIC, "srs.ks=[30,100]"],
             ["invalid config: srs.ks=[30.0, 100.0]; allowed: percentages strictly between 0 and 100"], composed=False),
    BadInput("max_len 0", [*SYNTHETIC, "dataset.max_len=0"],
             ["invalid config: dataset.max_len=0; allowed: an integer >= 1"], composed=False),
    BadInput("no layers", [*SYNTHETIC, "model.n_layers=0"],
             ["invalid config: model.n_layers=0; allowed: an integer >= 1"], composed=False),
    BadInput("d_model not divisible by heads", [*SYNTHETIC, "model.d_model=30"],
             ["invalid config: model.d_model=30; allowed: a positive multiple of model.n_heads=4"], composed=False),
    BadInput("negative seed", [*SYNTHETIC, "seed=-1"],
             ["invalid config: seed=-1; allowed: an integer in [0, 4294967295]"], composed=False),
    BadInput("unknown precision", [*SYNTHETIC, "trainer.precision=fp8"],
             ["invalid config: trainer.precision='fp8'; allowed: auto | 32-true |"], composed=False),
    BadInput("missing checkpoint", [*SYNTHETIC, "ckpt_path=/nonexistent/run"],
             ["invalid config: ckpt_path='/nonexistent/run'; no checkpoint at /nonexistent/run"], composed=False),
    BadInput("ckpt_path=last in a fresh dir", [*SYNTHETIC, "ckpt_path=last"],
             ["invalid config: ckpt_path='last' resumes the run in hydra.run.dir, but",
              "has no checkpoints/last.ckpt"], composed=False),
    BadInput("dataset=local without a dir", [*BASE, "dataset=local"],
             ["invalid config: dataset.local_dir=None; allowed: a directory"], composed=False),
    # -- data: one line naming the file, after loading starts --------------------------------------------
    BadInput("SAFR_DATA_DIR does not exist", [*BASE, "dataset=sst2"],
             ["/nope/sst2 does not exist (SAFR_DATA_DIR=", "/nope)"], env={"SAFR_DATA_DIR": "{data}/nope"}),
    BadInput("missing split file", [*BASE, "dataset=local"],
             ["missing test split: no test.parquet, test.csv or test.jsonl in"], data="no_test"),
    BadInput("missing text column", [*BASE, "dataset=local"],
             ["train.parquet: missing column(s) text (found sentence, label)"], data="no_text_column"),
    BadInput("label outside the classes", [*BASE, "dataset=local"],
             ["test.parquet: 1 label(s) outside the classes 0..1 (e.g. 3)"], data="label_3"),
    BadInput("labels that are not integers", [*BASE, "dataset=local"],
             ["train.parquet: column 'label' must hold integers 0..1, found"], data="string_labels"),
    BadInput("all texts empty", [*BASE, "dataset=local"],
             ["validation.parquet: all 2 texts are empty or whitespace-only"], data="empty_texts"),
    BadInput("corrupt parquet", [*BASE, "dataset=local"],
             ["could not read", "train.parquet: Parquet magic bytes not found"], data="corrupt"),
    BadInput("empty file", [*BASE, "dataset=local"], ["train.csv is empty (0 bytes)"], data="zero_bytes"),
    BadInput("parquet without rows", [*BASE, "dataset=local"], ["test.parquet has no rows"],
             data="zero_rows"),
    # -- numerical faults and the machine: after training starts ----------------------------------------
    # A learning rate of 1e10 sends the weights to inf in one Adam step: a NaN at global step 1.
    BadInput("diverging loss (NaN)", [*SYNTHETIC, "optim.lr=1e10"],
             ["non-finite loss at global step 1 in loss_ce, ", "lower optim.lr"], error="NonFiniteLossError"),
]  # fmt: skip
if not torch.cuda.is_available():  # on a machine with a GPU this is not a bad input
    CASES.append(BadInput("GPU trainer without a GPU", [*SYNTHETIC, "trainer.accelerator=gpu"],
                          ["invalid config: trainer.accelerator='gpu', trainer.devices=1"]))  # fmt: skip


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _write_data(root: Path) -> None:
    good = pd.DataFrame(ROWS, columns=["text", "label"])

    def write(name: str, split: str, df: pd.DataFrame | None = None) -> Path:
        directory = root / name
        directory.mkdir(parents=True, exist_ok=True)
        (df if df is not None else good).to_parquet(directory / f"{split}.parquet")
        return directory / f"{split}.parquet"

    for name in (
        "no_test",
        "no_text_column",
        "label_3",
        "string_labels",
        "empty_texts",
        "corrupt",
        "zero_rows",
    ):
        for split in ("train", "validation", "test"):
            write(name, split)
    (root / "no_test" / "test.parquet").unlink()
    write("no_text_column", "train", good.rename(columns={"text": "sentence"}))
    write("label_3", "test", pd.DataFrame([("fine", 0), ("odd", 3)], columns=["text", "label"]))
    write("string_labels", "train", good.assign(label=good["label"].map({0: "neg", 1: "pos"})))
    write("empty_texts", "validation", pd.DataFrame([("", 0), ("  \t", 1)], columns=["text", "label"]))
    write("corrupt", "train").write_bytes(b"PAR1 not a parquet file at all")
    write("zero_rows", "test", good.iloc[:0])
    (root / "zero_bytes").mkdir()
    for split in ("validation", "test"):
        write("zero_bytes", split)
    (root / "zero_bytes" / "train.csv").write_text("")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad-data")
    _write_data(root)
    return root


@pytest.fixture(scope="module")
def bad_input_runs(
    request: pytest.FixtureRequest, data_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[CLIBatch, Path]]:
    """Start the CLI runs of every selected case at once; each test then waits for its own."""
    selected = {
        item.callspec.params["case"].name
        for item in request.session.items
        if hasattr(item, "callspec") and isinstance(item.callspec.params.get("case"), BadInput)
    }
    runs_root = tmp_path_factory.mktemp("bad-input-runs")
    batch = CLIBatch()
    for case in CASES:
        if case.name not in selected:
            continue
        run_dir = runs_root / _slug(case.name)
        extra = [f"dataset.local_dir={data_root / case.data}"] if case.data else []
        env = {k: v.replace("{data}", str(data_root)) for k, v in case.env.items()}
        batch.submit(
            case.name,
            *case.args,
            *extra,
            f"data.cache_dir={runs_root / 'hf-cache' / _slug(case.name)}",
            f"hydra.run.dir={run_dir}",
            env=env,
        )
    yield batch, runs_root
    batch.close()


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_costs_one_line(case: BadInput, bad_input_runs: tuple[CLIBatch, Path]) -> None:
    batch, runs_root = bad_input_runs
    proc = batch.result(case.name)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = error_lines(proc)
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    for expected in case.expected:
        assert expected in lines[0]
    assert proc.returncode == 2
    run_dir = runs_root / _slug(case.name)
    if case.composed:  # the run dir existed: the failure is recorded there for aggregation
        results = json.loads((run_dir / "results.json").read_text())
        assert results["status"] == "failed" and results["reason"] == lines[0].removeprefix("error: ")
        assert "test" not in results
        if case.error:
            assert results["error"] == case.error
    else:  # nothing was started, nothing is left behind (Hydra's own folder is removed again)
        assert not run_dir.exists()


@pytest.mark.slow
def test_failing_sweep_jobs_are_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    # Job 0 has a bad value, job 1 diverges, job 2 trains; the failures come first.
    proc = run_train("--multirun", *SYNTHETIC, "lambda.imp=-1,0.1", "optim.lr=1e10,1e-4", f"hydra.sweep.dir={tmp_path}")
    # Every job ran; the sweep then says what failed and exits 1.
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert error_lines(proc)[-1] == f"error: sweep: 4 jobs: 1 ok, 3 failed; tables: make table SWEEP_DIR={tmp_path}"
    # job dirs are named "<job num>_<model>_imp..._s<seed>_<dataset>"
    results = {
        int(path.parent.name.split("_", 1)[0]): json.loads(path.read_text()) for path in tmp_path.glob("*/results.json")
    }
    assert sorted(results) == [0, 1, 2, 3]
    assert [results[i]["status"] for i in range(4)] == ["failed", "failed", "failed", "ok"]
    assert results[0]["error"] == results[1]["error"] == "ConfigError"
    assert "lambda.imp=-1.0" in results[0]["reason"]
    assert results[2]["error"] == "NonFiniteLossError" and results[2]["lambda"]["imp"] == 0.1
    assert 0 <= results[3]["test"]["acc"] <= 1


@pytest.mark.slow
def test_verbose_shows_the_traceback(tmp_path: Path) -> None:
    proc = run_train(*SYNTHETIC, "lambda.imp=-1", "--verbose", f"hydra.run.dir={tmp_path}")
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "ConfigError: invalid config: lambda.imp=-1.0" in proc.stderr


def test_a_loss_non_finite_before_any_update_blames_the_setup_not_the_learning_rate() -> None:
    from safr_lightning.errors import NonFiniteLossError

    first = str(NonFiniteLossError(0, {"loss_ce": float("nan"), "loss": float("nan")}))
    assert "the first forward pass is already non-finite: check vmask.tau" in first and "optim.lr" not in first
    later = str(NonFiniteLossError(7, {"loss_ce": float("inf"), "loss": float("inf")}))
    assert "lower optim.lr" in later


def test_a_config_error_leaves_no_run_folder(tmp_path: Path) -> None:
    from tests.cli_runs import run_train

    run_dir = tmp_path / "outputs" / "run"
    proc = run_train("dataset=synthetic", "lambda.imp=-1", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 2 and proc.stderr.startswith("error: invalid config: lambda.imp=-1.0")
    assert not run_dir.exists()
