from __future__ import annotations

import math

import pytest

from safr_lightning.errors import SAFRError
from safr_lightning.search.space import LogParam, parse_space


def test_the_band_below_low_means_zero_and_the_rest_is_log_uniform() -> None:
    p = LogParam("lambda.imp", low=0.001, high=100.0, zero=1.0)
    lo, hi = p.bounds
    assert (lo, hi) == pytest.approx((-4.0, 2.0))
    assert p.value(-3.5) == 0.0 and p.value(math.log10(0.001) - 1e-9) == 0.0
    assert p.value(-3.0) == pytest.approx(0.001) and p.value(2.0) == pytest.approx(100.0)
    assert p.value(-1.0) == pytest.approx(0.1) and p.value(math.log10(0.123456)) == 0.123  # 3 significant digits
    assert LogParam("lambda.inter", 0.01, 1.0, zero=0.0).bounds == pytest.approx((-2.0, 0.0))  # zero=0: never 0


@pytest.mark.parametrize(
    "params, message",
    [
        ({"lambda.imp": {"low": 1e-4, "high": 1e-2}}, "searchable keys are imp, inter"),
        ({"imp": {"low": 1.0, "high": 0.1}}, "0 < low < high"),
        ({"imp": {"low": 0.0, "high": 1.0}}, "0 < low < high"),
        ({"imp": {"low": 0.1, "high": 1.0, "zero": -1}}, "zero >= 0"),
        ({"imp": {"low": 0.1, "high": float("nan")}}, "0 < low < high"),
        ({"imp": {"high": 1.0}}, "expected {low, high, zero} numbers"),
        ({}, "nothing to search"),
    ],
)
def test_a_bad_space_is_one_clear_error(params: dict, message: str) -> None:
    with pytest.raises(SAFRError, match=message.replace("(", r"\(").replace("{", r"\{")):
        parse_space(params)


def test_the_params_name_the_lambdas() -> None:
    space = parse_space({"imp": {"low": 0.01, "high": 1.0}, "inter": {"low": 0.1, "high": 10.0, "zero": 0}})
    assert [(p.key, p.name, p.zero) for p in space] == [
        ("lambda.imp", "log10_lambda.imp", 1.0),
        ("lambda.inter", "log10_lambda.inter", 0.0),
    ]
