from __future__ import annotations

import pytest

from safr_lightning.sweep.paper_tables import TABLE6, TABLE6_ROWS, paper_position, paper_row


@pytest.mark.parametrize("dataset", ["sst2", "imdb"])
def test_table6_rows_are_consistent_srs_is_acc_minus_capacity_deleted_acc(dataset: str) -> None:
    # A mistyped number breaks SRS = Acc_S − Acc_S̃(k), which the paper's rows satisfy to rounding.
    assert list(TABLE6[dataset]) == list(TABLE6_ROWS)
    for values in TABLE6[dataset].values():
        assert values.srs == pytest.approx(values.acc_s - values.acc_capacity, abs=0.011)
        assert 45 <= values.acc_capacity <= values.acc_random <= values.acc_s <= 100


def test_paper_row_lookup_by_configuration() -> None:
    assert paper_row("sst2", "safr", 0.1, 0.1).srs == 17.21  # Table 1's best SST-2 setting
    assert paper_row("imdb", "safr", 0.1, 1).srs == 28.48  # and IMDB's
    assert paper_row("sst2", "baseline", 0, 0).acc_s == 70.21
    assert paper_row("synthetic", "safr", 0.1, 0.1) is None and paper_row("sst2", "safr", 0.5, 0.1) is None
    assert paper_position("baseline", 0, 0) == 0 and paper_position("safr", 100, 100) == 13
    assert paper_position("safr", 3, 3) is None
