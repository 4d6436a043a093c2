"""The optimisers of ``clusterneg.train.optimizer``: lazy Adam touches only looked-up rows,
equals dense Adam on its first step, trains every sampler, and checkpoints as one object."""

from __future__ import annotations

import math

import pytest
import torch

from clusterneg.errors import ConfigError
from clusterneg.model import ModelConfig, TwoTower
from clusterneg.samplers import SAMPLER_NAMES, build_sampler
from clusterneg.train.config import TrainConfig
from clusterneg.train.optimizer import JointOptimizer, LazyAdam, make_optimizer
from clusterneg.train.state import flatten, unflatten
from clusterneg.train.trainer import train_step
from test_samplers import N_ITEMS, N_USERS, OPTIONS, batches, make_ctx


def _model() -> TwoTower:
    torch.manual_seed(0)
    hist = torch.randint(0, N_ITEMS + 1, (N_USERS, 4), generator=torch.Generator().manual_seed(1))
    return TwoTower(ModelConfig(dim=8, history_len=4), N_USERS, N_ITEMS,
                    content=torch.randn(N_ITEMS, 5), history=hist)


def _step(model: TwoTower, opt: torch.optim.Optimizer, users: list[int], items: list[int]) -> None:
    u, i = torch.tensor(users), torch.tensor(items)
    loss = (model.user_vectors(u) * model.item_vectors(i)).sum()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def test_lazy_adam_equals_adam_on_the_first_step_then_leaves_untouched_rows_alone() -> None:
    dense, lazy = _model(), _model()
    opt_d = make_optimizer(dense, TrainConfig(lr=0.1))
    opt_l = make_optimizer(lazy, TrainConfig(lr=0.1, optimizer="lazy-adam"))
    assert isinstance(opt_l, JointOptimizer)
    assert [type(p).__name__ for p in opt_l.parts] == ["LazyAdam", "Adam"]
    _step(dense, opt_d, [0, 1], [3, 4])
    _step(lazy, opt_l, [0, 1], [3, 4])
    # Adam's first step from zero moments: rows without gradient move by 0 / (0 + eps) = 0
    for (name, a), b in zip(dense.named_parameters(), lazy.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
    row3_lazy = lazy.item_emb.weight[3].detach().clone()
    row3_dense = dense.item_emb.weight[3].detach().clone()
    _step(dense, opt_d, [2], [5])
    _step(lazy, opt_l, [2], [5])
    # item 3 was not looked up in step 2: lazy Adam leaves it, dense Adam moves it on its
    # first moment (beta1 * m != 0)
    assert torch.equal(lazy.item_emb.weight[3], row3_lazy)
    assert not torch.allclose(dense.item_emb.weight[3], row3_dense)
    assert lazy.item_emb.weight.grad.is_sparse
    # the dense content projection is stepped by Adam in both, identically
    assert torch.allclose(dense.content_proj.weight, lazy.content_proj.weight, atol=1e-6)


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_every_sampler_trains_with_lazy_adam(name: str) -> None:
    """No sampler reaches an embedding table other than through its lookup (SparseAdam
    rejects a dense gradient), and the loss stays finite."""
    ctx = make_ctx()
    torch.manual_seed(0)
    model = TwoTower(ModelConfig(dim=8, history_len=0), N_USERS, N_ITEMS)
    sampler = build_sampler(name, ctx, **OPTIONS[name])
    opt = make_optimizer(model, TrainConfig(optimizer="lazy-adam", lr=0.01))
    before = model.item_emb.weight.detach().clone()
    seen: set[int] = set()
    for batch in batches(3):
        out = train_step(model, sampler, batch, opt, ctx, True)
        assert math.isfinite(out.loss.item())
        seen |= set(batch.items.tolist())
    moved = (model.item_emb.weight != before).any(dim=1)
    assert bool(moved[sorted(seen)].all())  # positives always get a gradient


def test_joint_state_round_trips_through_the_checkpoint_format() -> None:
    """Train 2 steps, checkpoint (flatten / unflatten as state.safetensors does), restore into
    a fresh model and optimiser, step again: the same parameters as never stopping."""
    cfg = TrainConfig(optimizer="lazy-adam", lr=0.05)
    steps = [([0, 1], [3, 4]), ([2, 3], [4, 7]), ([1], [3])]
    straight = _model()
    opt = make_optimizer(straight, cfg)
    for s in steps:
        _step(straight, opt, *s)
    first = _model()
    opt1 = make_optimizer(first, cfg)
    for s in steps[:2]:
        _step(first, opt1, *s)
    skeleton, tensors = flatten({"model": first.state_dict(), "opt": opt1.state_dict()})
    saved = unflatten(skeleton, tensors)
    resumed = _model()
    opt2 = make_optimizer(resumed, cfg)
    resumed.load_state_dict(saved["model"])
    opt2.load_state_dict(saved["opt"])
    _step(resumed, opt2, *steps[2])
    for (name, a), b in zip(straight.named_parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b), name
    with pytest.raises(ConfigError, match="another --optimizer"):
        opt2.load_state_dict(make_optimizer(_model(), TrainConfig()).state_dict())


@pytest.mark.parametrize(("opts", "word"), [({"optimizer": "sgd"}, "--optimizer"),
                                             ({"optimizer": "lazy-adam", "weight_decay": 0.1},
                                              "weight decay")])
def test_bad_optimizer_settings_are_config_errors(opts: dict, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        TrainConfig(**opts).validate()


def test_lazy_adam_batch_of_one_example_equals_hand_computed_update() -> None:
    """One SparseAdam step from zero moments moves a looked-up row by -lr * sign(grad)
    (m / sqrt(v) = g / |g| after bias correction), up to eps."""
    emb = torch.nn.Embedding(3, 2)
    with torch.no_grad():
        emb.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, -1.0], [2.0, 2.0]]))
    holder = torch.nn.Module()
    holder.emb = emb
    opt = make_optimizer(holder, TrainConfig(optimizer="lazy-adam", lr=0.5))
    (emb(torch.tensor([1])) * torch.tensor([[3.0, -2.0]])).sum().backward()
    opt.step()
    assert torch.allclose(emb.weight, torch.tensor([[0.0, 0.0], [0.5, -0.5], [2.0, 2.0]]),
                          atol=1e-6)


def test_lazy_adam_equals_torch_sparse_adam_over_steps_with_repeated_rows() -> None:
    tables = []
    for cls in (LazyAdam, torch.optim.SparseAdam):
        torch.manual_seed(3)
        emb = torch.nn.Embedding(10, 4, sparse=True)
        opt = cls([emb.weight], lr=0.03, betas=(0.8, 0.95), eps=1e-6)
        g = torch.Generator().manual_seed(4)
        for _ in range(5):
            ids = torch.randint(0, 10, (7,), generator=g)  # repeats: rows summed
            target = torch.randn(7, 4, generator=g)
            opt.zero_grad(set_to_none=True)
            ((emb(ids) - target) ** 2).sum().backward()
            opt.step()
        tables.append(emb.weight.detach())
    assert torch.allclose(tables[0], tables[1], atol=1e-6)
    assert not torch.allclose(tables[0], torch.nn.Embedding(10, 4).weight)


def test_lazy_adam_refuses_a_dense_gradient() -> None:
    w = torch.nn.Parameter(torch.zeros(3, 2))
    opt = LazyAdam([w])
    w.sum().backward()
    with pytest.raises(ConfigError, match="sparse gradients"):
        opt.step()
