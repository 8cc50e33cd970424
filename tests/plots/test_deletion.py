from __future__ import annotations

from pathlib import Path

import pytest

from safr_lightning.plots import curves_from_metrics, curves_from_results, deletion_curve, save_figure

TEST = {  # results.json["test"], DESIGN §8
    "acc": 0.73,
    "ks": [10, 20, 30],
    "acc_capacity": {"10": 0.66, "20": 0.6, "30": 0.5575},
    "acc_random": {"10.0": 0.71, "20": 0.7, "30": 0.7061},
    "acc_vmask": {"30": 0.6},
    "srs": {"30": 17.21},
}


def test_curves_from_results_reads_designs_shape() -> None:
    curves = curves_from_results(TEST)
    assert curves is not None
    assert curves.ks == [10.0, 20.0, 30.0] and curves.acc == 0.73
    assert list(curves.curves) == ["capacity", "vmask"]  # capacity first, random is the reference
    assert curves.curves["capacity"] == [0.66, 0.6, 0.5575]
    assert curves.curves["vmask"] == [None, None, 0.6]
    assert curves.reference == [0.71, 0.7, 0.7061]


def test_curves_from_results_without_deletion_is_none() -> None:
    assert curves_from_results({"acc": 0.7, "loss": 0.5}) is None
    assert curves_from_results({"acc_random": {"10": 0.7}}) is None


def test_curves_from_metrics_reads_logged_names() -> None:
    metrics = {"test/acc": 0.8, "test/acc_capacity@30": 0.6, "test/acc_capacity@10": 0.7,
               "test/acc_random@30": 0.75, "test/srs@30": 20.0, "val/acc_capacity@30": 0.1}  # fmt: skip
    curves = curves_from_metrics(metrics)
    assert curves is not None
    assert curves.ks == [10.0, 30.0] and curves.curves == {"capacity": [0.7, 0.6]}
    assert curves.reference == [None, 0.75] and curves.acc == 0.8
    assert curves_from_metrics({"test/acc": 0.8}) is None


def test_deletion_curve_starts_every_line_at_acc_s(tmp_path: Path) -> None:
    curves = curves_from_results(TEST)
    assert curves is not None
    fig = deletion_curve(curves.ks, curves.curves, acc=curves.acc, reference=curves.reference)
    files = save_figure(fig, tmp_path / "curve")
    assert all(f.stat().st_size > 5_000 for f in files)
    ax = fig.axes[0]
    reference, capacity, vmask = ax.lines[:3]
    assert list(capacity.get_xdata()) == [0, 10, 20, 30]
    assert list(capacity.get_ydata()) == pytest.approx([73.0, 66.0, 60.0, 55.75])
    assert list(vmask.get_xdata()) == [0, 30]  # missing points are skipped, not drawn as 0
    assert list(reference.get_ydata()) == pytest.approx([73.0, 71.0, 70.0, 70.61])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "random deletion", "capacity deletion", "vmask deletion",
    ]  # fmt: skip
    assert ax.get_xlabel() and ax.get_ylabel() == "accuracy (%)"
