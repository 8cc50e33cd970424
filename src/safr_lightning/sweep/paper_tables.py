"""The paper's Table 6 (Chang, Deng & Chen 2025, appendix D), as printed: the numbers we compare against.

Accuracies are percentages; SRS is in percentage points (Acc_S − Acc_S̃(k)); k = 30, capacity at the
FFN. The paper's λ are not numerically ours (padding never enters our regularizers, DESIGN §5), so
compare the trends across rows, not the λ values one by one.
"""

from __future__ import annotations

from typing import NamedTuple


class PaperRow(NamedTuple):
    acc_s: float
    acc_random: float
    acc_capacity: float
    srs: float


PAPER_K = 30.0

# (model, λ_imp, λ_inter) in the paper's row order; ("baseline", 0, 0) is the row without VMASK.
TABLE6_ROWS: tuple[tuple[str, float, float], ...] = (
    ("baseline", 0.0, 0.0),
    ("safr", 0.0, 0.0),
    ("safr", 0.0, 0.01),
    ("safr", 0.0, 1.0),
    ("safr", 0.0, 100.0),
    ("safr", 0.01, 0.0),
    ("safr", 0.01, 0.01),
    ("safr", 0.1, 0.1),
    ("safr", 0.1, 1.0),
    ("safr", 1.0, 0.0),
    ("safr", 1.0, 0.1),
    ("safr", 1.0, 1.0),
    ("safr", 100.0, 0.0),
    ("safr", 100.0, 100.0),
)

_SST2 = (
    (70.21, 67.12, 66.21, 4.00),
    (72.56, 69.47, 64.44, 8.12),
    (72.84, 70.27, 62.78, 10.06),
    (73.01, 69.07, 60.32, 12.69),
    (59.35, 57.75, 56.38, 2.97),
    (72.67, 69.87, 61.41, 11.26),
    (73.07, 71.07, 58.49, 14.58),
    (72.96, 70.61, 55.75, 17.21),
    (72.67, 69.18, 59.58, 13.09),
    (71.30, 66.96, 55.06, 16.24),
    (71.81, 69.13, 56.38, 15.43),
    (71.93, 70.67, 56.78, 15.15),
    (64.67, 63.75, 57.92, 6.75),
    (63.01, 61.64, 54.20, 8.81),
)

_IMDB = (
    (80.14, 77.11, 76.60, 3.54),
    (78.43, 76.10, 73.56, 4.87),
    (81.16, 78.20, 74.61, 6.55),
    (80.44, 76.89, 71.84, 8.60),
    (77.83, 74.90, 67.64, 10.19),
    (80.00, 77.02, 70.98, 9.02),
    (80.30, 77.42, 64.58, 15.72),
    (79.24, 75.96, 53.99, 25.25),
    (78.45, 75.05, 49.97, 28.48),
    (74.95, 72.30, 50.07, 24.88),
    (74.89, 71.72, 50.08, 24.81),
    (74.78, 71.44, 53.94, 20.84),
    (51.53, 51.20, 50.00, 1.53),
    (53.48, 53.33, 50.00, 3.48),
)

TABLE6: dict[str, dict[tuple[str, float, float], PaperRow]] = {
    name: {row: PaperRow(*values) for row, values in zip(TABLE6_ROWS, table, strict=True)}
    for name, table in (("sst2", _SST2), ("imdb", _IMDB))
}

DATASET_TITLES = {"sst2": "SST-2", "imdb": "IMDB", "synthetic": "synthetic planted-rationale task"}


def paper_row(dataset: str, model: str, imp: float, inter: float) -> PaperRow | None:
    """Table 6's numbers for this configuration, or None when the paper has no such row."""
    return TABLE6.get(dataset, {}).get((model, float(imp), float(inter)))


def paper_position(model: str, imp: float, inter: float) -> int | None:
    """The row's index in Table 6's order, or None for a configuration the paper does not list."""
    try:
        return TABLE6_ROWS.index((model, float(imp), float(inter)))
    except ValueError:
        return None
