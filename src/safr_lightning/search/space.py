"""The search space of λ: log-uniform over decades, with a bottom band that means λ = 0.

A log scale cannot reach 0, yet λ = 0 is the paper's most telling setting (the regulariser off).
Each λ is searched as ``u = log10(λ)`` uniform on ``[log10(low) - zero, log10(high)]``; ``u`` below
``log10(low)`` is λ = 0. With ``low=0.001, high=100, zero=1`` a random draw is 0 one time in six,
and a model-based sampler (TPE) learns whether that band pays like any other part of the range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from safr_lightning.errors import SAFRError

SEARCHABLE = ("imp", "inter")  # hydra.sweeper.params.<name>: lambda.<name>


@dataclass(frozen=True)
class LogParam:
    key: str
    low: float
    high: float
    zero: float = 1.0  # width, in decades, of the band below ``low`` that means 0 (0: never 0)

    @property
    def name(self) -> str:
        """Optuna's parameter name: what the sampler sees."""
        return f"log10_{self.key}"

    @property
    def bounds(self) -> tuple[float, float]:
        return math.log10(self.low) - self.zero, math.log10(self.high)

    def value(self, u: float) -> float:
        """λ for the sampled ``u``, to 3 significant digits (readable run names; finer is noise)."""
        if u < math.log10(self.low):
            return 0.0
        return float(f"{10.0**u:.3g}")


def parse_space(params: Mapping[str, Any]) -> list[LogParam]:
    """``hydra.sweeper.params`` → the search space; one clear error for a bad entry."""
    space = []
    for name, spec in params.items():
        where = f"hydra.sweeper.params.{name}"
        key = f"lambda.{name}"
        if name not in SEARCHABLE:
            raise SAFRError(f"invalid config: {where}: searchable keys are {', '.join(SEARCHABLE)}")
        try:
            low, high, zero = float(spec["low"]), float(spec["high"]), float(spec.get("zero", 1.0))
        except (KeyError, TypeError, ValueError) as exc:
            raise SAFRError(f"invalid config: {where}={spec!r}: expected {{low, high, zero}} numbers") from exc
        if not (math.isfinite(low) and math.isfinite(high) and math.isfinite(zero)) or not 0 < low < high or zero < 0:
            raise SAFRError(f"invalid config: {where}={dict(spec)!r}: expected 0 < low < high and zero >= 0")
        space.append(LogParam(key, low, high, zero))
    if not space:
        raise SAFRError("invalid config: hydra.sweeper.params is empty: nothing to search")
    return space
