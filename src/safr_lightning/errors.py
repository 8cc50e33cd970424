"""Errors meant for the person at the keyboard.

A :class:`SAFRError` is printed as one line (``error: ...``) and ends the process with exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class SAFRError(Exception):
    """A problem with the user's input or environment, explained in one sentence."""


class ConfigError(SAFRError):
    """A config value outside what the project accepts."""


class DataError(SAFRError):
    """Missing, unreadable or malformed data, or no way to reach it."""


class NonFiniteLossError(SAFRError):
    """The loss became NaN or infinite during training."""

    def __init__(self, step: int, terms: dict[str, float]) -> None:
        bad = [name for name, value in terms.items() if not _finite(value)]
        shown = ", ".join(f"{name}={value}" for name, value in terms.items())
        super().__init__(f"non-finite loss at global step {step} in {', '.join(bad) or 'loss'} ({shown})")
        self.step = step
        self.terms = terms


def _finite(value: float) -> bool:
    return value == value and value not in (float("inf"), float("-inf"))
