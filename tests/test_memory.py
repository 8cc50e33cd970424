from __future__ import annotations

import ctypes
import ctypes.util
import sys

import pytest

from safr_lightning.memory import keep_freed_memory


def test_keep_freed_memory_applies_on_glibc() -> None:
    libc_name = ctypes.util.find_library("c")
    glibc = sys.platform.startswith("linux") and libc_name is not None and hasattr(ctypes.CDLL(libc_name), "mallopt")
    assert keep_freed_memory() is glibc


def test_keep_freed_memory_reports_an_impossible_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert keep_freed_memory() is False
