"""Seeded, deterministic training of a whole toy sweep as one batched model.

Every (replicate, sparsity, decay, λ) cell of the grid is one of the K models of a
:class:`~safr_lightning.toy.model.ToyModel`; one Adam over the summed losses trains them exactly as
K separate runs would. Within a replicate the cells share their initial ``W`` and their random
draws (common random numbers): the models at λ = 0 and λ > 0 start from the same weights and see the
same samples, so their difference is the penalty's, not the seed's. Replicates draw their own.

The objective of each model is ``recon / zero_model_loss + λ · importance_penalty`` (see
:func:`~safr_lightning.toy.model.zero_model_loss`): the reconstruction loss on the scale where
1 is the loss of predicting 0, so one λ weighs the penalty the same at every sparsity. At λ = 0 it
is Elhage et al.'s loss up to a constant factor, which does not change Adam's steps.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from safr_lightning.toy.model import (
    ToyModel,
    importance,
    importance_penalty,
    init_weights,
    reconstruction_gradients,
    reconstruction_loss,
    sparse_features,
    zero_model_loss,
)

EVAL_SEED_OFFSET = 1_000_003  # the held-out evaluation batch's generator: seed + this
LR_SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class Grid:
    """The K cells of a sweep, each a [K] tensor; cell k is model k of the batched model."""

    sparsity: torch.Tensor
    decay: torch.Tensor
    penalty: torch.Tensor
    replicate: torch.Tensor  # long, 0..R-1

    @property
    def size(self) -> int:
        return int(self.sparsity.shape[0])

    @property
    def n_replicates(self) -> int:
        return int(self.replicate.max().item()) + 1 if self.size else 0


def make_grid(
    sparsities: Sequence[float], decays: Sequence[float], penalties: Sequence[float], replicates: int
) -> Grid:
    """Every (replicate, sparsity, decay, λ), λ varying fastest."""
    cells = list(itertools.product(range(replicates), sparsities, decays, penalties))
    return Grid(
        sparsity=torch.tensor([c[1] for c in cells], dtype=torch.float32),
        decay=torch.tensor([c[2] for c in cells], dtype=torch.float32),
        penalty=torch.tensor([c[3] for c in cells], dtype=torch.float32),
        replicate=torch.tensor([c[0] for c in cells], dtype=torch.long),
    )


@dataclass(frozen=True)
class TrainSettings:
    n_features: int = 20
    n_hidden: int = 5
    steps: int = 10_000
    batch_size: int = 1024
    lr: float = 1e-3
    lr_schedule: str = "cosine"  # cosine (to 0 at the last step) | constant
    eval_samples: int = 100_000
    eval_chunk: int = 10_000  # held-out samples per forward pass (memory: K · chunk · n floats)
    log_points: int = 10  # how many times the (normalized) objective terms are recorded


@dataclass
class TrainResult:
    model: ToyModel
    weights: torch.Tensor  # the importances I, [K, n]
    recon: torch.Tensor  # Elhage et al.'s loss on the held-out batch, [K]
    recon_normalized: torch.Tensor  # recon / zero_model_loss, [K]
    penalty: torch.Tensor  # importance_penalty at the end, [K]
    history: list[dict[str, list[float]]]  # per log point: step and the [K] training terms
    seconds: float


def _batch(values: torch.Tensor, draws: torch.Tensor, sparsity: torch.Tensor) -> torch.Tensor:
    """The K models' inputs [K, N, n] from their replicates' draws [R, N, n] (replicate-major grid).

    The same as ``sparse_features(values[rep], draws[rep], sparsity)`` in one broadcast pass, without
    first copying each replicate's draws K / R times.
    """
    r, n_samples, n = values.shape
    threshold = sparsity.view(r, -1, 1, 1)
    x = torch.where(draws.unsqueeze(1) >= threshold, values.unsqueeze(1), 0.0)
    return x.view(-1, n_samples, n)


def _draws(n_replicates: int, n_samples: int, n_features: int, generator: torch.Generator) -> torch.Tensor:
    """U[0, 1) values and presence draws [2, R, N, n]."""
    return torch.rand(2, n_replicates, n_samples, n_features, generator=generator)


@torch.no_grad()
def evaluate(
    model: ToyModel, grid: Grid, weights: torch.Tensor, n_samples: int, seed: int, chunk: int = 10_000
) -> torch.Tensor:
    """Elhage et al.'s reconstruction loss [K] on one held-out sample set shared by every model.

    Every model sees the same draws (thresholded at its own S), so two models at one sparsity are
    compared on identical inputs; ``chunk`` samples go through at a time.
    """
    generator = torch.Generator().manual_seed(seed + EVAL_SEED_OFFSET)
    k, total = grid.size, torch.zeros(grid.size)
    for start in range(0, n_samples, chunk):
        size = min(chunk, n_samples - start)
        values, draws = _draws(1, size, model.n_features, generator)
        x = sparse_features(values.expand(k, -1, -1), draws.expand(k, -1, -1), grid.sparsity)
        total += reconstruction_loss(x, model(x), weights) * size
    return total / n_samples


def lr_factor(schedule: str, steps: int) -> Callable[[int], float]:
    """The learning rate's multiplier at each step: 1 (constant) or a cosine from 1 to 0."""
    if schedule == "constant":
        return lambda step: 1.0
    if schedule == "cosine":
        return lambda step: 0.5 * (1.0 + math.cos(math.pi * step / steps))
    raise ValueError(f"unknown lr schedule {schedule!r}; allowed: {', '.join(LR_SCHEDULES)}")


def _values(t: torch.Tensor | None) -> list[float]:
    return [] if t is None else t.tolist()


def train_grid(grid: Grid, settings: TrainSettings, seed: int) -> TrainResult:
    """Train every cell of ``grid`` for ``settings.steps`` Adam steps from ``seed``; deterministic on CPU."""
    started = time.perf_counter()
    n, m = settings.n_features, settings.n_hidden
    generator = torch.Generator().manual_seed(seed)
    rep = grid.replicate
    per_replicate = grid.size // max(1, grid.n_replicates)
    if not torch.equal(rep, torch.arange(grid.n_replicates).repeat_interleave(per_replicate)):
        raise ValueError("the grid must be replicate-major with as many cells per replicate (make_grid's order)")
    model = ToyModel(init_weights(grid.n_replicates, m, n, generator)[rep])
    weights = importance(n, grid.decay)
    zero_loss = zero_model_loss(grid.sparsity, weights)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(settings.lr_schedule, settings.steps))
    every = max(1, settings.steps // max(1, settings.log_points))
    history: list[dict[str, list[float]]] = []
    penalized = bool((grid.penalty > 0).any())
    for step in range(settings.steps):
        values, draws = _draws(grid.n_replicates, settings.batch_size, n, generator)
        x = _batch(values, draws, grid.sparsity)
        log_now = (step + 1) % every == 0 or step + 1 == settings.steps
        # The reconstruction term's gradient by hand (the bulk of the work, [K, N, n]); the
        # penalty's ([K, n, n], cheap) by autograd, accumulated into the same .grad.
        recon, grad_weight, grad_bias = reconstruction_gradients(
            model.weight, model.bias, x, weights, 1.0 / zero_loss, with_loss=log_now
        )
        model.weight.grad, model.bias.grad = grad_weight, grad_bias
        if penalized or log_now:
            penalty = importance_penalty(model.weight, weights)
            if penalized:
                (grid.penalty * penalty).sum().backward()
        optimizer.step()
        scheduler.step()
        if log_now:
            history.append(
                {"step": [step + 1], "recon_normalized": _values(recon), "penalty": penalty.detach().tolist()}
            )
    recon_eval = evaluate(model, grid, weights, settings.eval_samples, seed, settings.eval_chunk)
    with torch.no_grad():
        final_penalty = importance_penalty(model.weight, weights)
    return TrainResult(
        model=model,
        weights=weights,
        recon=recon_eval,
        recon_normalized=recon_eval / zero_loss,
        penalty=final_penalty,
        history=history,
        seconds=time.perf_counter() - started,
    )
