"""The hand-written backward passes of clusterneg.model match autograd's."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from clusterneg.model import row_dot, unit_rows


def test_unit_rows_forward_is_f_normalize_bit_for_bit() -> None:
    x = torch.randn(50, 16)
    x[3] = 0.0  # a clamped row
    assert torch.equal(unit_rows(x), F.normalize(x, dim=-1))


def test_unit_rows_gradient_matches_autograd_including_a_clamped_row() -> None:
    x = torch.randn(7, 5, dtype=torch.float64)
    x[2] = 1e-14  # norm below eps: the clamp is active, gradient g / eps
    g = torch.randn(7, 5, dtype=torch.float64)
    a = x.clone().requires_grad_()
    b = x.clone().requires_grad_()
    (unit_rows(a) * g).sum().backward()
    (F.normalize(b, dim=-1) * g).sum().backward()
    assert torch.allclose(a.grad, b.grad, rtol=1e-10, atol=0)
    assert torch.autograd.gradcheck(unit_rows, (torch.randn(4, 3, dtype=torch.float64,
                                                            requires_grad=True),))


def test_row_dot_value_and_gradients_match_einsum() -> None:
    u = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    v = torch.randn(4, 3, 6, dtype=torch.float64, requires_grad=True)
    g = torch.randn(4, 3, dtype=torch.float64)
    (row_dot(u, v) * g).sum().backward()
    gu, gv = u.grad.clone(), v.grad.clone()
    u.grad = v.grad = None
    (torch.einsum("bd,bkd->bk", u, v) * g).sum().backward()
    assert torch.allclose(gu, u.grad) and torch.allclose(gv, v.grad)
    assert torch.autograd.gradcheck(row_dot, (u.detach().requires_grad_(),
                                              v.detach().requires_grad_()))


def test_row_dot_without_user_gradient() -> None:
    u = torch.randn(2, 3)
    v = torch.randn(2, 5, 3, requires_grad=True)
    row_dot(u, v).sum().backward()
    assert torch.allclose(v.grad, u[:, None, :].expand(2, 5, 3))
