"""The two towers: normalisation, history building and masking, unknown items, config."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clusterneg.errors import ConfigError
from clusterneg.model import ModelConfig, TwoTower, build_history


def test_history_keeps_last_items_by_order_right_aligned() -> None:
    users = np.array([0, 0, 0, 1])
    items = np.array([5, 6, 7, 2])
    order = np.array([3.0, 1.0, 2.0, 0.0])  # user 0 in time order: 6, 7, 5
    hist = build_history(users, items, order, n_users=3, n_items=9, length=2)
    assert hist.tolist() == [[7, 5], [9, 2], [9, 9]]


def test_towers_are_unit_norm_and_history_excludes_positive() -> None:
    hist = torch.tensor([[1, 2], [3, 4]])
    m = TwoTower(ModelConfig(dim=8, user_id=False, history_len=2), 2, 5, history=hist)
    u = m.user_vectors(torch.tensor([0, 1]))
    assert torch.allclose(u.norm(dim=-1), torch.ones(2), atol=1e-5)
    # excluding item 1 from user 0's history leaves only item 2
    only2 = m.user_vectors(torch.tensor([0]), exclude_items=torch.tensor([1]))
    direct = torch.nn.functional.normalize(m.hist_emb.weight[2], dim=-1)
    assert torch.allclose(only2[0], direct, atol=1e-5)


def test_unknown_items_use_content_path() -> None:
    content = torch.randn(4, 6)
    m = TwoTower(ModelConfig(dim=8, history_len=0), 2, 4, content=content)
    new_rows = torch.randn(1, 6)
    v = m.item_vectors(torch.tensor([10]), content_rows=new_rows)
    expect = torch.nn.functional.normalize(m.content_proj(new_rows), dim=-1)
    assert torch.allclose(v, expect, atol=1e-5)
    ids_only = TwoTower(ModelConfig(dim=8, history_len=0), 2, 4)
    with pytest.raises(ConfigError):
        ids_only.item_vectors(torch.tensor([10]))


def test_bad_config_is_refused() -> None:
    with pytest.raises(ConfigError):
        ModelConfig(temperature=0).validate()
    with pytest.raises(ConfigError):
        ModelConfig(user_id=False, history_len=0).validate()


def test_compact_history_mean_equals_the_padded_weighted_sum() -> None:
    """The CPU path passes only the valid history entries; the sums are term for term the
    padded, zero-weighted ones (an empty history gives a zero vector)."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    hist = torch.randint(0, 30, (40, 7))
    hist[torch.rand(40, 7) < 0.5] = 30
    hist[3] = 30  # no history at all
    m = TwoTower(ModelConfig(dim=8, history_len=7, user_id=False), 40, 30, history=hist)
    exclude = torch.randint(0, 30, (40,))
    valid = (hist != 30) & (hist != exclude[:, None])
    weights = valid.float() / valid.sum(1, keepdim=True).clamp(min=1)
    padded = F.embedding_bag(hist, m.hist_emb.weight, mode="sum", per_sample_weights=weights)
    assert torch.equal(m._history_mean(hist, valid), padded)
    assert torch.equal(m._history_mean(hist, valid)[3], torch.zeros(8))
