"""FC1 neuron polysemy from the neuron side: ``python -m safr_lightning.neurons`` (one checkpoint) and
``python -m safr_lightning.neurons.compare`` (several, side by side). The maths is
:mod:`safr_lightning.analysis.neurons`; the drawings :mod:`safr_lightning.plots.neurons`."""

from __future__ import annotations

from typing import Any

NEURONS_FILE = "neurons.json"


def label_of(identity: Any) -> str:
    """A model's name in titles and tables, from a run identity (results.json / neurons.json fields)."""
    lam = identity.get("lambda") or {}
    if identity.get("model") == "baseline":
        return "Baseline"
    return f"{identity.get('model', '?')} λ=({lam.get('imp', '?')}, {lam.get('inter', '?')})"
