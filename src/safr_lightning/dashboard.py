"""A W&B workspace laid out for SAFR: ``python -m safr_lightning.dashboard entity=E project=P [group=G]``.

The spec is built offline (:func:`build_workspace`, checked in tests); saving it needs the network
and W&B credentials. Sections, in order:

- *Accuracy and SRS per epoch*: ``val/acc``, ``val/srs@30``, ``train/acc`` against ``epoch``;
- *Loss terms*: ``train/loss_ce_epoch``, ``train/loss_imp_epoch``, ``train/loss_inter_epoch``,
  ``val/loss``;
- *Test SRS curve*: the ``test/srs_curve`` table (accuracy and SRS at every k);
- *Neuron-allocation figures*: the test-end figures (``figures/*``).

Runs are grouped by (model, λ_imp, λ_inter) and, with ``group=``, limited to one sweep launch
(the W&B group a multirun job logs into: ``<sweep_name>-<date>-<time>``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from safr_lightning.cli import run_main
from safr_lightning.errors import ConfigError, SAFRError

PER_EPOCH = ("val/acc", "val/srs@30", "train/acc")
LOSS_TERMS = ("train/loss_ce_epoch", "train/loss_imp_epoch", "train/loss_inter_epoch", "val/loss")
SRS_TABLE = "test/srs_curve"
FIGURES = ("token_graph", "layer_capacity", "layer_interference", "important_vs_rest", "deletion_curve")
GROUP_BY = ("model.name", "lambda.imp", "lambda.inter")


def build_workspace(entity: str, project: str, group: str | None = None, name: str = "SAFR") -> Any:
    """The workspace spec (``wandb_workspaces.workspaces.Workspace``); nothing is sent."""
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    def line(metric: str) -> Any:
        return wr.LinePlot(title=metric, x="epoch", y=[metric], groupby_aggfunc="mean", groupby_rangefunc="stddev")

    sections = [
        ws.Section(name="Accuracy and SRS per epoch", panels=[line(m) for m in PER_EPOCH], is_open=True),
        ws.Section(name="Loss terms", panels=[line(m) for m in LOSS_TERMS], is_open=True),
        ws.Section(name="Test SRS curve", panels=[wr.WeavePanelSummaryTable(table_name=SRS_TABLE)], is_open=True),
        ws.Section(
            name="Neuron-allocation figures",
            # One text's figure is logged as figures/<name>, several as figures/<name>/<i> (n_texts=3 by default).
            panels=[
                wr.MediaBrowser(title=f, media_keys=[f"figures/{f}", *(f"figures/{f}/{i}" for i in range(3))])
                for f in FIGURES
            ],
        ),
    ]
    filters = [ws.Metric("Group") == group] if group else ""
    runset = ws.RunsetSettings(filters=filters, groupby=[ws.Config(key) for key in GROUP_BY])
    return ws.Workspace(entity=entity, project=project, name=name, sections=sections, runset_settings=runset)


def panel_list(workspace: Any) -> list[tuple[str, str, str]]:
    """(section, panel type, what it shows) for every panel: what the closing notes and tests read."""
    rows = []
    for section in workspace.sections:
        for panel in section.panels:
            shown = (
                getattr(panel, "y", None) or getattr(panel, "media_keys", None) or [getattr(panel, "table_name", "")]
            )
            rows.append((section.name, type(panel).__name__, ", ".join(str(s) for s in shown)))
    return rows


def _parse(argv: Sequence[str]) -> dict[str, str]:
    allowed = ("entity", "project", "group", "name")
    values: dict[str, str] = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in allowed:
            raise ConfigError(f"invalid argument {arg!r}; give key=value with key in {', '.join(allowed)}")
        values[key] = value
    for key in ("entity", "project"):
        if not values.get(key):
            raise ConfigError(f"{key}= is required: python -m safr_lightning.dashboard entity=E project=P [group=G]")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> int:
        args = _parse(sys.argv[1:] if argv is None else argv)
        workspace = build_workspace(args["entity"], args["project"], args.get("group"), args.get("name", "SAFR"))
        for section, kind, shown in panel_list(workspace):
            print(f"{section:28s} {kind:24s} {shown}")
        try:
            workspace.save()
        except Exception as exc:  # no network, no credentials, no such project
            raise SAFRError(f"could not save the workspace to W&B ({type(exc).__name__}: {exc})") from None
        print(f"saved: {workspace.url}")
        return 0

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
