from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from safr_lightning.analysis.allocation import group_statistics, profile_texts
from safr_lightning.analysis.figures import TEXT_FIGURES, group_figure, label_names, save_all, text_figures
from safr_lightning.module import SAFRModule


def test_label_names_name_sentiment_classes_only_for_known_datasets() -> None:
    def fake(dataset: str, classes: int) -> SimpleNamespace:
        return SimpleNamespace(hparams={"num_classes": classes, "run_config": {"dataset": {"name": dataset}}})

    assert label_names(fake("sst2", 2)) == ["negative", "positive"]
    assert label_names(fake("local", 2)) == ["label 0", "label 1"]
    assert label_names(fake("local", 3)) == ["label 0", "label 1", "label 2"]


def test_text_figures_draw_graph_and_both_layer_figures(tiny_module: SAFRModule, tmp_path: Path) -> None:
    (profile,) = profile_texts(tiny_module, ["good kaba Zorbly naba"])
    figures = text_figures(profile, label_names(tiny_module), top_pairs=3)
    assert tuple(figures) == TEXT_FIGURES
    written = save_all(figures, tmp_path, prefix="t_", formats=["png"])
    assert all(files[0].stat().st_size > 5_000 for files in written.values())
    heat = figures["layer_capacity"].axes[0]
    assert [t.get_text() for t in heat.get_yticklabels()] == [
        "embedding capacity", "VMASK keep probability", "attention received (÷ max)",
        "attention output capacity", "FC1 capacity", "FC2 capacity",
    ]  # fmt: skip
    assert "Zorbly?" in [t.get_text() for t in heat.get_xticklabels()]
    panels = [ax.get_title() for ax in figures["layer_interference"].axes if ax.get_title()]
    assert panels == ["embedding", "VMASK", "attention weights (head mean)", "attention output", "FC1", "FC2"]
    title = figures["token_graph"].get_suptitle()
    assert "good kaba Zorbly naba" in title and f"p = {profile.probs[profile.prediction]:.3f}" in title


def test_baseline_figures_have_no_vmask_rows(tiny_baseline: SAFRModule) -> None:
    (profile,) = profile_texts(tiny_baseline, ["good kaba"])
    figures = text_figures(profile, ["negative", "positive"], vmask=False)
    rows = [t.get_text() for t in figures["layer_capacity"].axes[0].get_yticklabels()]
    assert "VMASK keep probability" not in rows and len(rows) == 5


def test_group_figure_compares_three_statistics(tiny_module: SAFRModule, tmp_path: Path) -> None:
    texts = ["good kaba naba taba bad", "dull naba taba kaba good bad fuda"]
    stats = group_statistics(tiny_module, [tiny_module.encode(texts)])
    fig = group_figure(stats, "tiny")
    assert [ax.get_title() for ax in fig.axes] == [
        "FC1 capacity", "FC1 polysemanticity", "FC1 interference of token pairs",
    ]  # fmt: skip
    assert "2 texts" in fig.get_suptitle()
    assert save_all({"g": fig}, tmp_path, formats=["svg"])["g"][0].stat().st_size > 5_000
