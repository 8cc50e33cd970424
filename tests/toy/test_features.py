"""The dedicated-dimension ground truth and the summaries on hand-built weights."""

from __future__ import annotations

import torch

from safr_lightning.toy.features import feature_stats, top_features
from safr_lightning.toy.model import importance


def test_dedicated_dimensions_on_hand_built_weights() -> None:
    # m = 3, n = 6: features 0, 1 own a dimension each; 2 and 3 are an antipodal pair in the third;
    # 4 is too small to count as represented; 5 is dead.
    w = torch.zeros(1, 3, 6)
    w[0, 0, 0] = 1.0
    w[0, 1, 1] = 0.9
    w[0, 2, 2], w[0, 2, 3] = 1.0, -1.0
    w[0, 0, 4] = 0.2
    stats = feature_stats(w, importance(6, torch.tensor([0.8])))
    assert stats.represented[0].tolist() == [True, True, True, True, False, False]
    # Feature 0 shares its dimension with the small feature 4: interference 0.04 < 0.1.
    assert stats.dedicated[0].tolist() == [True, True, False, False, False, False]
    assert stats.n_dedicated.item() == 2 and stats.n_represented.item() == 4
    torch.testing.assert_close(stats.capacity[0, 2:4], torch.tensor([0.5, 0.5]))
    assert stats.capacity[0, 5].item() == 0.0  # a zero vector represents nothing


def test_top_features_are_the_m_most_important() -> None:
    weights = torch.tensor([[0.1, 0.9, 0.5, 0.7], [1.0, 1.0, 1.0, 1.0]])
    assert top_features(weights, 2).tolist() == [[False, True, False, True], [True, True, False, False]]
