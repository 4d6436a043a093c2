"""Drop-in use: the sampler + loss inside a plain PyTorch loop around someone else's model.

The loop body is the one shown in docs/dropin.md; the towers are a tiny custom module that
knows nothing about clusterneg.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from clusterneg.loss import sampler_loss
from clusterneg.samplers import Batch, SamplerContext, build_sampler


class MyTwoTower(nn.Module):
    """Not ours: id embeddings, L2-normalised outputs."""

    def __init__(self, n_users: int, n_items: int, dim: int = 16) -> None:
        super().__init__()
        self.users, self.items = nn.Embedding(n_users, dim), nn.Embedding(n_items, dim)

    def user(self, ids: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.users(ids), dim=-1)

    def item(self, ids: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.items(ids), dim=-1)


def _data(n_users: int = 64, n_items: int = 200, n_clusters: int = 10):
    """Each user likes the items of one cluster; the clusters are known."""
    g = torch.Generator().manual_seed(0)
    item_cluster = torch.arange(n_items) % n_clusters
    taste = torch.randint(0, n_clusters, (n_users,), generator=g)
    users = torch.randint(0, n_users, (4096,), generator=g)
    items = taste[users] + n_clusters * torch.randint(0, n_items // n_clusters, (4096,),
                                                      generator=g)
    return users, items, item_cluster, taste


@pytest.fixture
def one_thread():
    """Small ops: one thread is faster, and immune to a busy machine's oversubscription."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_sampler_and_loss_train_a_foreign_model(one_thread: None) -> None:
    torch.manual_seed(0)
    users_all, items_all, item_cluster, taste = _data()
    freq = torch.bincount(items_all, minlength=200).float().clamp(min=0.5)
    model = MyTwoTower(64, 200)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    # --- the drop-in part (docs/dropin.md) ---
    ctx = SamplerContext(n_items=200, item_log_freq=(freq / freq.sum()).log(),
                         item_cluster=item_cluster, n_clusters=10, batch_size=128)
    sampler = build_sampler("cluster-goobs", ctx, n_negatives=16, slots=32)
    losses = []
    for step, idx in enumerate(torch.randperm(4096).split(128) * 3):
        users, items = users_all[idx], items_all[idx]
        batch = Batch(users, items, step=step)
        blocks = sampler.negatives(batch, model)
        u, v = model.user(users), model.item(items)
        loss = sampler_loss(sampler, batch, blocks, u, v, lambda b: model.item(b.item_ids),
                            0.1, ctx.item_log_freq).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        sampler.observe(batch, model, v.detach())
        # --- end of the drop-in part ---
        losses.append(loss.item())
    assert sum(losses[-10:]) / 10 < 0.6 * sum(losses[:10]) / 10
    # the model learned each user's cluster: top-20 items are mostly from it
    with torch.no_grad():
        top = (model.user(torch.arange(64)) @ model.item(torch.arange(200)).T).topk(20).indices
    in_taste = (item_cluster[top] == taste[:, None]).float().mean().item()
    assert in_taste > 0.8  # chance: 0.1
    assert sampler.stats()["cluster/draws"] > 0
