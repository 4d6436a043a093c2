"""Embedding gradients densified into persistent buffers: same Adam steps, one buffer."""

from __future__ import annotations

import copy

import torch

from clusterneg.model import ModelConfig, TwoTower
from clusterneg.train.optimizer import reuse_embedding_grads


def _model() -> TwoTower:
    torch.manual_seed(0)
    hist = torch.tensor([[1, 2, 9], [3, 3, 9], [9, 9, 9]])  # padded with n_items = 9
    return TwoTower(ModelConfig(dim=4, history_len=3), n_users=3, n_items=9,
                    content=torch.randn(9, 5), history=hist)


def _steps(model: TwoTower, n: int) -> list[int]:
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    ptrs = []
    for step in range(n):
        users = torch.tensor([0, 1, 2, step % 3])
        items = torch.tensor([4, 4, 7, step])  # item 4 twice: its gradient rows are summed
        loss = (model.user_vectors(users, exclude_items=items)
                * model.item_vectors(items)).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        ptrs.append(model.item_emb.weight.grad.data_ptr())
        opt.step()
    return ptrs


def test_same_parameters_as_dense_gradients_and_one_buffer_per_table() -> None:
    dense, reused = _model(), _model()
    reused_copy = copy.deepcopy(reused)
    assert reuse_embedding_grads(reused) == 3  # user ids, history items, item ids
    _steps(dense, 4)
    ptrs = _steps(reused, 4)
    for (name, a), b in zip(dense.named_parameters(), reused.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-7), name
    assert len(set(ptrs)) == 1  # the same buffer every step
    assert not reused.item_emb.weight.grad.is_sparse
    assert reuse_embedding_grads(reused) == 0  # idempotent
    assert not torch.equal(reused_copy.item_emb.weight, reused.item_emb.weight)


def test_gradient_accumulated_over_two_backward_passes() -> None:
    emb = torch.nn.Embedding(4, 2)
    reuse_embedding_grads(emb)
    emb(torch.tensor([1])).sum().backward()
    emb(torch.tensor([1, 2])).sum().backward()  # no zero_grad: adds into the dense buffer
    assert emb.weight.grad.tolist() == [[0, 0], [2, 2], [1, 1], [0, 0]]


def test_rows_of_an_earlier_step_do_not_leak_into_the_next() -> None:
    emb = torch.nn.Embedding(40, 2)
    reuse_embedding_grads(emb)
    emb(torch.tensor([1, 2])).sum().backward()
    emb.weight.grad = None  # zero_grad(set_to_none=True); only rows 1 and 2 are re-zeroed
    emb(torch.tensor([5])).sum().backward()
    assert emb.weight.grad.tolist() == [[0, 0]] * 5 + [[1, 1]] + [[0, 0]] * 34
    emb.weight.grad = None
    emb(torch.arange(40).repeat(2)).sum().backward()  # more than a tenth of the table
    emb.weight.grad = None
    emb(torch.tensor([0])).sum().backward()  # zeroed whole
    assert emb.weight.grad.tolist() == [[1, 1]] + [[0, 0]] * 39
