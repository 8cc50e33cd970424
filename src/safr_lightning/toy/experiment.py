"""The toy sweep end to end: train the grid, measure every feature, write ``toy.json`` and the figures.

``python -m safr_lightning.toy`` (:mod:`safr_lightning.toy.__main__`) calls :func:`run_toy` in its
Hydra run dir. The question it answers: does SAFR's importance-weighted polysemanticity penalty
give the important features more capacity *at equal reconstruction loss*? Each penalized model is
compared with the model of the same replicate, sparsity and decay trained at λ = 0 (same initial
weights, same samples): the relative change of its reconstruction loss and the change of its
importance-weighted capacity ``Σ_i I_i C_i / Σ_i I_i``. "Equal" means a relative change within
``toy.match_tolerance``.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from safr_lightning.files import write_text_atomic
from safr_lightning.toy.config import validate
from safr_lightning.toy.features import DEDICATED_INTERFERENCE, REPRESENTED_NORM, FeatureStats, feature_stats
from safr_lightning.toy.train import Grid, TrainResult, TrainSettings, make_grid, train_grid

RESULTS_FILE = "toy.json"
# toy.json without the per-model, per-feature cells (2 MB for the default sweep): what docs/results keeps.
SUMMARY_FILE = "toy_summary.json"
CHANGED = 0.005  # a weighted-capacity change smaller than this counts as "unchanged"
PENALTY_FORM = "L_imp = sum_i I_i sqrt(P_i / m) / sum_i I_i, P_i = sum_{j!=i} (W_i_hat . W_j)^2 (polysemanticity)"
OBJECTIVE = "recon / zero_model_loss + lambda * L_imp, zero_model_loss = (1 - S) / 3 * sum_i I_i"


def _round(values: Any, digits: int = 6) -> Any:
    """Floats (nested lists of them) rounded for the JSON file."""
    if isinstance(values, list):
        return [_round(v, digits) for v in values]
    if isinstance(values, float):
        return float(f"{values:.{digits}g}")
    return values


def _array(t: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    return t.detach().float().reshape(*shape, *t.shape[1:]).numpy()


def summarize(
    result: TrainResult, stats: FeatureStats, grid_shape: tuple[int, int, int, int], penalties: list[float], tol: float
) -> dict[str, np.ndarray]:
    """The per-model scalars as arrays [R, S, D, L] (replicate × sparsity × decay × λ), plus the
    paired changes against λ = 0 where the sweep has λ = 0."""
    arrays = {
        "recon": _array(result.recon, grid_shape),
        "recon_normalized": _array(result.recon_normalized, grid_shape),
        "penalty_value": _array(result.penalty, grid_shape),
        "weighted_capacity": _array(stats.weighted_capacity, grid_shape),
        "top_capacity": _array(stats.top_capacity, grid_shape),
        "rest_capacity": _array(stats.rest_capacity, grid_shape),
        "total_capacity": _array(stats.total_capacity, grid_shape),
        "n_represented": _array(stats.n_represented, grid_shape),
        "n_dedicated": _array(stats.n_dedicated, grid_shape),
        "dimensions_per_feature": _array(stats.dimensions_per_feature, grid_shape),
    }
    if 0.0 in penalties:
        base = penalties.index(0.0)
        recon = arrays["recon_normalized"]
        arrays["recon_change"] = recon / recon[..., base : base + 1] - 1
        for key in ("weighted_capacity", "top_capacity", "rest_capacity", "n_dedicated"):
            arrays[f"{key}_change"] = arrays[key] - arrays[key][..., base : base + 1]
        arrays["matched"] = np.abs(arrays["recon_change"]) <= tol
    return arrays


def graded_decays(decays: list[float]) -> list[int]:
    """The indices of the decays < 1 (unequal importances), or of all decays when none is < 1."""
    return [d for d, decay in enumerate(decays) if decay < 1] or list(range(len(decays)))


def verdict(arrays: dict[str, np.ndarray], decays: list[float], penalties: list[float]) -> list[dict[str, Any]]:
    """Per λ > 0: how the penalized models compare with their λ = 0 twins.

    Over the cells with unequal importances (decay < 1) when the sweep has any: at decay 1 no
    feature is more important than another and "important features get more capacity" has no meaning.
    """
    if "matched" not in arrays:
        return []
    graded = graded_decays(decays)
    out = []
    for p, lam in enumerate(penalties):
        if lam == 0:
            continue
        pick = (slice(None), slice(None), graded, p)
        change = arrays["weighted_capacity_change"][pick].ravel()
        recon = arrays["recon_change"][pick].ravel()
        matched = arrays["matched"][pick].ravel()

        def counts(mask: np.ndarray, change: np.ndarray = change) -> dict[str, Any]:
            c = change[mask]
            return {
                "models": int(mask.sum()),
                "weighted_capacity_change_mean": float(c.mean()) if c.size else None,
                "up": int((c > CHANGED).sum()),
                "down": int((c < -CHANGED).sum()),
                "unchanged": int((np.abs(c) <= CHANGED).sum()),
            }

        out.append(
            {
                "penalty": lam,
                "decays": [decays[d] for d in graded],
                "all": {**counts(np.ones_like(matched)), "recon_change_mean": float(recon.mean())},
                "matched": counts(matched),
                "better_on_both": int(((recon < 0) & (change > CHANGED)).sum()),
            }
        )
    return out


def _cells(grid: Grid, result: TrainResult, stats: FeatureStats, arrays: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """One record per model: its cell, its scalars, every per-feature number, W, b and the training log."""
    flat = {k: v.reshape(-1) for k, v in arrays.items()}
    weight, bias = result.model.weight.detach(), result.model.bias.detach()
    cells = []
    for k in range(grid.size):
        cell: dict[str, Any] = {
            "replicate": int(grid.replicate[k]),
            "sparsity": float(f"{grid.sparsity[k].item():.6g}"),
            "decay": float(f"{grid.decay[k].item():.6g}"),
            "penalty": float(f"{grid.penalty[k].item():.6g}"),
        }
        for key, values in flat.items():
            value = values[k].item()
            cell[key] = value if isinstance(value, bool) else _round(float(value))
        cell["features"] = {
            "importance": _round(result.weights[k].tolist()),
            "capacity": _round(stats.capacity[k].tolist()),
            "norm": _round(stats.norm[k].tolist()),
            "polysemanticity": _round(stats.polysemanticity[k].tolist()),
            "represented": stats.represented[k].tolist(),
            "dedicated": stats.dedicated[k].tolist(),
        }
        cell["W"] = _round(weight[k].tolist())
        cell["b"] = _round(bias[k].tolist())
        cell["history"] = [
            {
                "step": h["step"][0],
                "recon_normalized": _round(h["recon_normalized"][k]) if h["recon_normalized"] else None,
                "penalty": _round(h["penalty"][k]),
            }
            for h in result.history
        ]
        cells.append(cell)
    return cells


def _table(
    arrays: dict[str, np.ndarray], sparsities: list[float], decays: list[float], penalties: list[float]
) -> list[dict[str, Any]]:
    """Means over replicates per (sparsity, decay, λ)."""
    rows = []
    for s, sparsity in enumerate(sparsities):
        for d, decay in enumerate(decays):
            for p, lam in enumerate(penalties):
                row: dict[str, Any] = {"sparsity": sparsity, "decay": decay, "penalty": lam}
                for key, values in arrays.items():
                    v = values[:, s, d, p].astype(float)
                    row[key] = _round(float(v.mean()))
                row["matched_fraction"] = row.pop("matched", None)
                row["n_replicates"] = int(arrays["recon"].shape[0])
                rows.append(row)
    return rows


def draw_figures(
    arrays: dict[str, np.ndarray], stats: FeatureStats, cfg: DictConfig, shape: tuple[int, int, int, int], out_dir: Path
) -> list[Path]:
    from safr_lightning.plots.style import save_figure
    from safr_lightning.plots.toy import feature_bars, phase_diagram, tradeoff

    toy = cfg.toy
    sparsities, decays, penalties = list(toy.sparsities), list(toy.decays), list(toy.penalty)
    m = toy.n_hidden

    def by_penalty(key: str) -> np.ndarray:  # mean over replicates, as [L, D, S]
        return arrays[key].mean(0).transpose(2, 1, 0)

    panels = {
        "features with a dedicated dimension": by_penalty("n_dedicated"),
        f"features represented (‖W_i‖ > {REPRESENTED_NORM:g})": by_penalty("n_represented"),
        f"mean capacity, top {m} features": by_penalty("top_capacity"),
        f"mean capacity, other {toy.n_features - m}": by_penalty("rest_capacity"),
    }
    limits = {
        "features with a dedicated dimension": (0.0, float(m)),
        f"mean capacity, top {m} features": (0.0, 1.0),
        f"mean capacity, other {toy.n_features - m}": (0.0, 1.0),
    }
    written = save_figure(
        phase_diagram(panels, sparsities, decays, penalties, limits), out_dir / "toy_phase", cfg.formats, cfg.dpi
    )
    d = decays.index(toy.bar_decay)
    chosen = [sparsities.index(s) for s in toy.bar_sparsities]

    def per_feature(t: torch.Tensor) -> np.ndarray:  # replicate 0, [L, chosen S, n]
        return _array(t, shape)[0][chosen][:, d].transpose(1, 0, 2)

    bars = feature_bars(
        per_feature(stats.capacity),
        per_feature(stats.norm),
        per_feature(stats.dedicated),
        [sparsities[s] for s in chosen],
        penalties,
        toy.bar_decay,
        note=f" (replicate 0 of seed {cfg.seed})",
    )
    written += save_figure(bars, out_dir / "toy_features", cfg.formats, cfg.dpi)
    if "recon_change" in arrays and len(penalties) > 1:
        positive = [p for p, lam in enumerate(penalties) if lam > 0]
        graded = graded_decays(decays)  # the cells the verdict counts

        def penalized(key: str, p: int) -> np.ndarray:  # [R·S·D'] of one λ, against its λ = 0 twins
            return arrays[key][:, :, graded, p].ravel()

        recon = np.stack([penalized("recon_change", p) for p in positive])
        change = np.stack([penalized("weighted_capacity_change", p) for p in positive])
        sparsity = np.broadcast_to(np.asarray(sparsities)[None, :, None], (shape[0], shape[1], len(graded))).ravel()
        shown = ", ".join(f"{decays[d]:g}" for d in graded)
        figure = tradeoff(
            recon, change, sparsity, [penalties[p] for p in positive], toy.match_tolerance, note=f"\n(decays {shown})"
        )
        written += save_figure(figure, out_dir / "toy_tradeoff", cfg.formats, cfg.dpi)
    return written


def summary_of(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` without ``cells`` (every model's per-feature numbers) and ``figures`` (this machine's paths)."""
    return {key: value for key, value in report.items() if key not in ("cells", "figures")}


def run_toy(cfg: DictConfig, out_dir: str | Path) -> dict[str, Any]:
    """Train and measure the sweep of ``cfg`` (a composed ToyConfig); write toy.json and figures into ``out_dir``."""
    validate(cfg)
    started = time.perf_counter()
    torch.set_num_threads(cfg.threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    toy = cfg.toy
    sparsities, decays, penalties = (
        [float(v) for v in toy.sparsities],
        [float(v) for v in toy.decays],
        [float(v) for v in toy.penalty],
    )
    grid = make_grid(sparsities, decays, penalties, toy.replicates)
    settings = TrainSettings(
        n_features=toy.n_features,
        n_hidden=toy.n_hidden,
        steps=toy.steps,
        batch_size=toy.batch_size,
        lr=toy.lr,
        lr_schedule=toy.lr_schedule,
        eval_samples=toy.eval_samples,
    )
    result = train_grid(grid, settings, cfg.seed)
    stats = feature_stats(result.model.weight, result.weights)
    shape = (toy.replicates, len(sparsities), len(decays), len(penalties))
    arrays = summarize(result, stats, shape, penalties, toy.match_tolerance)
    figures = draw_figures(arrays, stats, cfg, shape, out_dir)
    seconds = time.perf_counter() - started
    report = {
        "config": OmegaConf.to_container(cfg, resolve=True),
        "seed": cfg.seed,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "threads": torch.get_num_threads(),
        "models": grid.size,
        "wall_seconds": {"train": round(result.seconds, 2), "total": round(seconds, 2)},
        "seconds_per_model": round(result.seconds / grid.size, 4),
        "definitions": {
            "capacity": "safr_lightning.metrics.superposition.capacity of h = W^T (features as tokens): "
            "||W_i||^4 / sum_j (W_i . W_j)^2 = Elhage et al.'s dimensionality",
            "represented": f"||W_i|| > {REPRESENTED_NORM}",
            "dedicated": f"represented and sum_(j!=i) (W_i_hat . W_j)^2 < {DEDICATED_INTERFERENCE}",
            "top": f"the {toy.n_hidden} most important features (0..{toy.n_hidden - 1})",
            "weighted_capacity": "sum_i I_i C_i / sum_i I_i",
            "penalty": PENALTY_FORM,
            "objective": OBJECTIVE,
            "recon": "sum_i I_i (x_i - x'_i)^2, mean over the held-out samples (Elhage et al.'s loss)",
            "recon_change": "recon_normalized / recon_normalized at lambda = 0 (same replicate, S, decay) - 1",
            "matched": f"|recon_change| <= {toy.match_tolerance}",
        },
        "grid": {"sparsities": sparsities, "decays": decays, "penalty": penalties, "replicates": toy.replicates},
        "verdict": verdict(arrays, decays, penalties),
        "table": _table(arrays, sparsities, decays, penalties),
        "cells": _cells(grid, result, stats, arrays),
        "figures": [str(p) for p in figures],
    }
    path = out_dir / RESULTS_FILE
    write_text_atomic(path, json.dumps(report, indent=1) + "\n")
    write_text_atomic(out_dir / SUMMARY_FILE, json.dumps(summary_of(report), indent=1) + "\n")
    report["path"] = path
    report["summary"] = summary_line(arrays, report, sparsities, decays, penalties, toy.n_hidden)
    return report


def summary_line(
    arrays: dict[str, np.ndarray],
    report: dict[str, Any],
    sparsities: list[float],
    decays: list[float],
    penalties: list[float],
    m: int,
) -> str:
    parts = [f"toy: {report['models']} models in {report['wall_seconds']['train']:.0f} s"]
    base = penalties.index(0.0) if 0.0 in penalties else 0
    dense = sparsities.index(min(sparsities))
    steep = decays.index(min(decays))  # the most unequal importances: "top m" means most there
    top = arrays["top_capacity"][:, dense, steep, base].mean()
    rest = arrays["rest_capacity"][:, dense, steep, base].mean()
    parts.append(
        f"S={sparsities[dense]:g}, decay {decays[steep]:g}, λ={penalties[base]:g}: "
        f"top-{m} capacity {top:.2f}, rest {rest:.2f}"
    )
    for v in report["verdict"]:
        matched = v["matched"]
        mean = matched["weighted_capacity_change_mean"]
        shown = "n/a" if mean is None else f"{mean:+.3f}"
        parts.append(
            f"λ={v['penalty']:g} at equal recon: {matched['models']}/{v['all']['models']} models, "
            f"Σ I·C {shown} (up {matched['up']}, down {matched['down']})"
        )
    return "; ".join(parts)
