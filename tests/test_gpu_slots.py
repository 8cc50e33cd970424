from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from safr_lightning import gpu_slots
from safr_lightning.gpu_slots import gpu_slot, job_gpu_slot

JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
BASIC = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


@pytest.fixture(autouse=True)
def fresh_process_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu_slots, "_pinned", None)
    monkeypatch.setattr(gpu_slots, "_visible_at_start", None)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,7")


def is_locked(path: Path) -> bool:
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def test_concurrent_jobs_get_different_gpus_and_see_only_theirs(tmp_path: Path) -> None:
    with gpu_slot(["4", "7"], tmp_path) as first:
        assert os.environ["CUDA_VISIBLE_DEVICES"] == first == "4"
        with gpu_slot(["4", "7"], tmp_path) as second:  # another job while the first still runs
            assert second == "7" and os.environ["CUDA_VISIBLE_DEVICES"] == "7"
            assert is_locked(tmp_path / "gpu4.slot0.lock") and is_locked(tmp_path / "gpu7.slot0.lock")
    assert not is_locked(tmp_path / "gpu4.slot0.lock") and not is_locked(tmp_path / "gpu7.slot0.lock")


def test_several_jobs_share_a_gpu_up_to_its_slots(tmp_path: Path) -> None:
    with gpu_slot(["4", "7"], tmp_path, slots_per_gpu=2) as a, gpu_slot(["4", "7"], tmp_path, slots_per_gpu=2) as b:
        gpu_slots._pinned = None  # the third job comes from another joblib worker (process)
        with gpu_slot(["4", "7"], tmp_path, slots_per_gpu=2) as c:
            assert [a, b, c] == ["4", "7", "4"]  # spread over the GPUs first, then a second job per GPU
            assert is_locked(tmp_path / "gpu4.slot1.lock") and not is_locked(tmp_path / "gpu7.slot1.lock")


def test_a_worker_keeps_its_gpu_across_jobs(tmp_path: Path) -> None:
    with gpu_slot(["4", "7"], tmp_path), gpu_slot(["4", "7"], tmp_path) as second:
        assert second == "7"
    # This process last ran on GPU 7: its next job prefers 7 although 4 is free too.
    with gpu_slot(["4", "7"], tmp_path) as again:
        assert again == "7"


def test_only_one_gpu_jobs_of_a_joblib_sweep_claim_a_slot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def cfg(accelerator: str, devices: int) -> SimpleNamespace:
        return SimpleNamespace(trainer=SimpleNamespace(accelerator=accelerator, devices=devices))

    def hydra(target: str) -> SimpleNamespace:
        return SimpleNamespace(launcher={"_target_": target})

    assert isinstance(job_gpu_slot(cfg("gpu", 1), hydra(BASIC)), type(gpu_slots.nullcontext()))
    assert isinstance(job_gpu_slot(cfg("cpu", 1), hydra(JOBLIB)), type(gpu_slots.nullcontext()))
    assert isinstance(job_gpu_slot(cfg("gpu", -1), hydra(JOBLIB)), type(gpu_slots.nullcontext()))
    monkeypatch.setattr(gpu_slots, "default_lock_dir", lambda: tmp_path)
    with job_gpu_slot(cfg("gpu", 1), hydra(JOBLIB)) as gpu:
        assert gpu == "4" and os.environ["CUDA_VISIBLE_DEVICES"] == "4"
    with job_gpu_slot(cfg("cuda", 1), hydra(JOBLIB)) as gpu:  # the next job of this worker
        assert gpu == "4" and gpu_slots.visible_gpus() == ["4", "7"]  # the sweep's GPUs, not the job's
