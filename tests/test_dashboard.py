"""The W&B workspace spec, built and checked offline (saving it needs the network)."""

from __future__ import annotations

import pytest

from safr_lightning.dashboard import build_workspace, main, panel_list


def test_the_workspace_holds_safrs_panels_grouped_by_configuration() -> None:
    workspace = build_workspace("me", "safr", group="paper-2025-06-01-12-00-00-000000")
    sections = [s.name for s in workspace.sections]
    assert sections == ["Accuracy and SRS per epoch", "Loss terms", "Test SRS curve", "Neuron-allocation figures"]
    shown = {(section, what) for section, _, what in panel_list(workspace)}
    assert ("Accuracy and SRS per epoch", "val/srs@30") in shown and ("Test SRS curve", "test/srs_curve") in shown
    assert ("Loss terms", "train/loss_imp_epoch") in shown and ("Loss terms", "train/loss_inter_epoch") in shown
    assert all(p.x == "epoch" for s in workspace.sections[:2] for p in s.panels)
    figures = workspace.sections[3].panels[0].media_keys  # the keys AllocationFigures logs under
    assert figures == ["figures/token_graph", "figures/token_graph/0", "figures/token_graph/1", "figures/token_graph/2"]
    assert [g.name for g in workspace.runset_settings.groupby] == ["model.name", "lambda.imp", "lambda.inter"]
    model = workspace._to_model()  # the spec converts to what W&B stores, without the network
    assert len(model.spec.section.panel_bank_config.sections) == 4


def test_without_entity_or_network_it_is_one_line(capsys: pytest.CaptureFixture) -> None:
    assert main(["project=p"]) == 2
    assert capsys.readouterr().err.startswith("error: entity= is required")
