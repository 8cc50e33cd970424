"""One rule for which checkpoint a path means: evaluate and explain take the tested one, resume the last."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safr_lightning.checkpoints import resolve_checkpoint, run_dir_of
from safr_lightning.errors import ConfigError, SAFRError


def run_dir(root: Path, *names: str, tested: str | None = None) -> Path:
    (root / "checkpoints").mkdir(parents=True)
    for name in names:
        (root / "checkpoints" / name).write_bytes(b"")
    if tested is not None:
        (root / "results.json").write_text(json.dumps({"status": "ok", "checkpoint": tested}))
    return root


def test_a_run_dir_means_its_tested_checkpoint_then_best_then_last(tmp_path: Path) -> None:
    paper = run_dir(tmp_path / "a", "best.ckpt", "last.ckpt", tested="checkpoints/last.ckpt")  # test_on=last
    assert resolve_checkpoint(str(paper)) == paper / "checkpoints" / "last.ckpt"
    plain = run_dir(tmp_path / "b", "best.ckpt", "last.ckpt")
    assert resolve_checkpoint(str(plain)) == plain / "checkpoints" / "best.ckpt"
    only_last = run_dir(tmp_path / "c", "last.ckpt")
    assert resolve_checkpoint(str(only_last)) == only_last / "checkpoints" / "last.ckpt"


def test_resume_means_the_last_checkpoint_whatever_was_tested(tmp_path: Path) -> None:
    run = run_dir(tmp_path / "a", "best.ckpt", "last.ckpt", tested="checkpoints/best.ckpt")
    assert resolve_checkpoint(str(run), resume=True) == run / "checkpoints" / "last.ckpt"
    with pytest.raises(ConfigError, match=r"no checkpoint at .*b/checkpoints/last.ckpt$"):
        resolve_checkpoint(str(run_dir(tmp_path / "b", "best.ckpt")), resume=True)


def test_files_missing_paths_and_unreadable_results(tmp_path: Path) -> None:
    run = run_dir(tmp_path / "a", "best.ckpt")
    file = run / "checkpoints" / "best.ckpt"
    assert resolve_checkpoint(str(file)) == file and run_dir_of(file) == run.resolve()
    with pytest.raises(ConfigError, match="ckpt_path is required"):
        resolve_checkpoint(None)
    with pytest.raises(ConfigError, match=r"ckpt_path='.*nope'; no checkpoint at"):
        resolve_checkpoint(str(tmp_path / "nope"))
    (run / "results.json").write_text("{broken")
    with pytest.raises(SAFRError, match=r"results.json is unreadable .*; name the checkpoint"):
        resolve_checkpoint(str(run))
