"""Which fidelity a run has: its preset (``conf/fidelity/<name>.yaml``) and every key that departs from it.

The presets are read from the YAML files themselves, so the label written into results.json and the
tables can never disagree with what ``fidelity=paper`` actually sets.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from safr_lightning.paths import CONFIG_DIR

EXACT = "exact"
FIDELITY_PRESETS = (EXACT, "paper")  # conf/fidelity/<name>.yaml
# Keys that are switched together in the decomposition tables, under one name.
GROUPS = {"padding": ("fixed_padding", "pad_embedding", "pool_over_pad", "regularizers")}


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: node}


@cache
def preset(name: str) -> dict[str, Any]:
    """The dotted keys a preset sets, e.g. ``{"fidelity.pool_over_pad": True, "data.bucketing": False}``."""
    values = OmegaConf.to_container(OmegaConf.load(Path(CONFIG_DIR) / "fidelity" / f"{name}.yaml"))
    return _flatten(values)


def tracked_keys() -> list[str]:
    """Every key some preset sets (``fidelity.name`` aside), in a stable order."""
    keys: dict[str, None] = {}
    for name in FIDELITY_PRESETS:
        keys.update(dict.fromkeys(k for k in preset(name) if k != "fidelity.name"))
    return list(keys)


def shared_keys() -> frozenset[str]:
    """The keys every preset sets: a run's fidelity mode always names them when they depart."""
    keys = [set(preset(name)) - {"fidelity.name"} for name in FIDELITY_PRESETS]
    return frozenset(set.intersection(*keys))


def _short(key: str) -> str:
    return key.removeprefix("fidelity.")


def _show(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _name(cfg: DictConfig) -> str:
    # A run config from before fidelity existed (an old checkpoint's) was exact.
    return str(OmegaConf.select(cfg, "fidelity.name", default=EXACT))


def _value(cfg: DictConfig, key: str) -> Any:
    """``cfg``'s value of ``key``; a fidelity key an old config lacks has its exact value."""
    return OmegaConf.select(cfg, key, default=preset(EXACT).get(key))


def departures(cfg: DictConfig) -> dict[str, Any]:
    """The keys of ``cfg`` that differ from its own preset (``fidelity.name``)."""
    return {
        key: _value(cfg, key)
        for key, value in preset(_name(cfg)).items()
        if key != "fidelity.name" and _value(cfg, key) != value
    }


def fidelity_label(cfg: DictConfig) -> str:
    """``exact``, ``paper``, or the preset plus what differs: ``paper, pool_over_pad=false``."""
    diffs = departures(cfg)
    return ", ".join([_name(cfg), *(f"{_short(k)}={_show(v)}" for k, v in diffs.items())])


def fidelity_record(cfg: DictConfig) -> dict[str, Any]:
    """results.json's ``fidelity`` block: the label (``mode``) and the value of every tracked key."""
    record: dict[str, Any] = {"mode": fidelity_label(cfg), "preset": _name(cfg)}
    for key in tracked_keys():
        record[_short(key)] = _value(cfg, key)
    return record


def mode_of(results: dict[str, Any]) -> str:
    """The fidelity label of a results.json (runs written before fidelity existed were exact)."""
    block = results.get("fidelity")
    return str(block.get("mode", EXACT)) if isinstance(block, dict) else EXACT


def short_label(mode: str) -> str:
    """A mode label with each group of keys switched together named once: ``paper, padding=exact``.

    A group is collapsed when all its keys depart from the preset to the other preset's values.
    """
    base, *parts = [p.strip() for p in mode.split(",")]
    diffs = dict(p.split("=", 1) for p in parts if "=" in p)
    others = [name for name in FIDELITY_PRESETS if name != base]
    for group, keys in GROUPS.items():
        for other in others:
            target = {k: _show(preset(other).get(f"fidelity.{k}")) for k in keys}
            if all(diffs.get(k) == v for k, v in target.items()):
                diffs = {k: v for k, v in diffs.items() if k not in keys} | {group: other}
    return ", ".join([base, *(f"{k}={v}" for k, v in diffs.items())])
