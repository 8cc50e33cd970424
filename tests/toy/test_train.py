"""Training the toy model: the excerpt's dense regime, determinism, and batching."""

from __future__ import annotations

import torch

from safr_lightning.toy.features import feature_stats
from safr_lightning.toy.train import Grid, TrainSettings, make_grid, train_grid


def test_at_sparsity_zero_the_m_most_important_features_get_capacity_one_and_the_rest_zero() -> None:
    """n = 20, m = 5, I_i = 0.7^i, S = 0, the default training (10k Adam steps), two replicates.

    Tolerance: capacity > 0.95 for features 0..4 and < 0.05 for features 5..19, and exactly
    features 0..4 have a dedicated dimension. Trained models reach 1 − 3e-5 and 3e-5 (checked over
    seeds 0, 1, 2 with 3 replicates each, and 6 replicates of seeds 0 and 1).
    """
    grid = make_grid([0.0], [0.7], [0.0], replicates=2)
    result = train_grid(grid, TrainSettings(n_features=20, n_hidden=5), seed=0)
    stats = feature_stats(result.model.weight, result.weights)
    assert (stats.capacity[:, :5] > 0.95).all(), stats.capacity[:, :5]
    assert (stats.capacity[:, 5:] < 0.05).all(), stats.capacity[:, 5:]
    assert stats.dedicated[:, :5].all() and not stats.dedicated[:, 5:].any()


def test_same_seed_gives_the_same_weights_and_another_seed_does_not() -> None:
    grid = make_grid([0.0, 0.9], [0.8], [0.0, 0.1], replicates=1)
    settings = TrainSettings(steps=30, batch_size=64, eval_samples=500)
    first, again, other = (train_grid(grid, settings, seed) for seed in (0, 0, 1))
    assert torch.equal(first.model.weight, again.model.weight)
    assert torch.equal(first.recon, again.recon)
    assert not torch.equal(first.model.weight, other.model.weight)


def test_a_batched_grid_trains_each_cell_as_it_would_alone() -> None:
    grid = make_grid([0.0, 0.9], [1.0, 0.7], [0.0, 0.3], replicates=1)
    settings = TrainSettings(steps=40, batch_size=64, eval_samples=500)
    together = train_grid(grid, settings, seed=5)
    for k in (0, 5, 7):
        one = Grid(
            sparsity=grid.sparsity[k : k + 1],
            decay=grid.decay[k : k + 1],
            penalty=grid.penalty[k : k + 1],
            replicate=grid.replicate[k : k + 1],
        )
        alone = train_grid(one, settings, seed=5)
        torch.testing.assert_close(alone.model.weight[0], together.model.weight[k], rtol=1e-5, atol=1e-6)


def test_penalized_and_unpenalized_twins_start_from_the_same_weights() -> None:
    grid = make_grid([0.5], [0.7], [0.0, 5.0], replicates=2)
    result = train_grid(grid, TrainSettings(steps=1, lr=1e-9, eval_samples=100), seed=0)
    w = result.model.weight
    torch.testing.assert_close(w[0], w[1], atol=1e-6, rtol=0)  # replicate 0: λ = 0 and λ = 5
    assert not torch.allclose(w[0], w[2])  # replicate 1 draws its own
