"""trainer.precision=auto: bf16-mixed only where the hardware computes bf16 natively."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from safr_lightning.precision import choose_precision, cpu_flags

ZEN3 = "processor : 0\nflags\t\t: fpu sse sse2 avx avx2 fma bmi2\n"
ZEN4 = "processor : 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512vl\n"
SAPPHIRE_RAPIDS = "processor : 0\nflags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\n"


@pytest.mark.parametrize(
    ("cpuinfo", "used", "why"),
    [
        (ZEN3, "32-true", "CPU without amx_bf16 / avx512_bf16"),
        (ZEN4, "bf16-mixed", "CPU computes bf16 natively (avx512_bf16)"),
        (SAPPHIRE_RAPIDS, "bf16-mixed", "CPU computes bf16 natively (amx_bf16)"),
        ("", "32-true", "CPU without amx_bf16 / avx512_bf16"),  # unreadable: the safe choice
    ],
)
def test_auto_on_a_cpu_uses_bf16_only_with_native_bf16(cpuinfo: str, used: str, why: str) -> None:
    chosen = choose_precision("auto", "cpu", cpuinfo)
    assert chosen["requested"] == "auto" and chosen["used"] == used and chosen["why"].startswith(why)


def test_an_explicit_precision_is_used_as_given() -> None:
    assert choose_precision("bf16-mixed", "cpu", ZEN3) == {
        "requested": "bf16-mixed", "used": "bf16-mixed", "why": "set by trainer.precision"
    }  # fmt: skip


def test_auto_on_a_gpu_accelerator_without_a_cuda_device_falls_back_to_fp32() -> None:
    import torch

    if torch.cuda.is_available():  # a GPU box: the device decides
        assert choose_precision("auto", "gpu")["used"] in ("bf16-mixed", "32-true")
    else:
        assert choose_precision("auto", "gpu") == {
            "requested": "auto", "used": "32-true", "why": "CUDA device without bf16 support (or none visible)"
        }  # fmt: skip


def test_cpu_flags_parses_the_first_flags_line() -> None:
    assert cpu_flags(ZEN4) >= {"avx512_bf16", "avx2"} and cpu_flags("no flags here") == set()


def test_a_run_records_the_precision_asked_used_and_why(make_cfg: Callable, tmp_path: Path) -> None:
    from safr_lightning.experiment import build_trainer, run_training

    cfg = make_cfg("trainer.precision=auto")
    expected = choose_precision("auto", "cpu")
    assert build_trainer(cfg, [], [], tmp_path).precision == expected["used"]
    results = run_training(cfg, tmp_path / "run")
    assert results["precision"] == expected
