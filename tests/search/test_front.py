from __future__ import annotations

import random

import pytest

from safr_lightning.search.front import dominates, pareto_front


def brute_front(points: list[tuple[float, ...]]) -> list[int]:
    """Reference: keep i unless some j is >= in every coordinate and > in at least one (two loops)."""
    kept = []
    for i, p in enumerate(points):
        beaten = False
        for j, q in enumerate(points):
            if i == j:
                continue
            at_least = True
            strictly = False
            for a, b in zip(q, p, strict=True):
                if a < b:
                    at_least = False
                if a > b:
                    strictly = True
            if at_least and strictly:
                beaten = True
        if not beaten:
            kept.append(i)
    return kept


def test_front_of_handmade_points_keeps_ties_and_drops_the_dominated() -> None:
    points = [(1, 5), (2, 4), (2, 4), (0, 0), (3, 1), (1, 4), (3, 1), (3, 0.5)]
    # (1, 4) loses to (2, 4) and (1, 5); (0, 0) to all; (3, 0.5) to (3, 1); equal points stay together.
    assert pareto_front(points) == [0, 1, 2, 4, 6]


def test_a_single_point_and_no_points() -> None:
    assert pareto_front([(0.5, -3.0)]) == [0]
    assert pareto_front([]) == []


@pytest.mark.parametrize("seed", range(5))
def test_front_matches_the_two_loop_reference_on_random_points(seed: int) -> None:
    rng = random.Random(seed)
    dims = 2 + seed % 2
    points = [tuple(float(rng.randint(0, 6)) for _ in range(dims)) for _ in range(40)]  # many ties
    front = pareto_front(points)
    assert front == brute_front(points)
    assert all(not dominates(points[j], points[i]) for i in front for j in range(len(points)))


def test_dominates_needs_one_strict_gain() -> None:
    assert dominates((1, 2), (1, 1)) and not dominates((1, 1), (1, 1)) and not dominates((2, 0), (1, 1))
