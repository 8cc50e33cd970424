"""The README's tables of the neuron analysis, the toy model and the λ study come from the committed result files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"[+-]?\d+\.\d+(?: ± \d+\.\d+)?")


def block(name: str) -> str:
    readme = (REPO / "README.md").read_text()
    start, end = readme.index(f"<!-- {name} -->"), readme.index(f"<!-- /{name} -->")
    return readme[start:end]


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("neurons:sst2", "docs/results/sst2_neurons/neurons_comparison.md"),
        ("toy", "docs/results/toy/toy.md"),
        ("pareto:sst2_exact", "docs/results/sst2_pareto_exact.md"),
    ],
)
def test_every_number_of_a_readme_results_table_is_in_its_file(name: str, source: str) -> None:
    text = (REPO / source).read_text()
    rows = [line for line in block(name).splitlines() if line.strip().startswith("|") and "---" not in line]
    numbers = [n for row in rows for n in NUMBER.findall(row)]
    assert len(numbers) >= 8  # the table is there
    assert [n for n in numbers if n not in text] == []
