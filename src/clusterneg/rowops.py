"""Row-wise L2 normalisation and per-example dot products with hand-written backward passes.

Every candidate of a step goes through two row-wise operations: the item tower's L2
normalisation (Yi et al. 2019) and the dot product with its example's user vector. With 16-32
negatives per example they run over 17-33x the rows of an in-batch step, so their cost is the
per-example negatives' cost. Composed from autograd primitives, ``F.normalize``'s backward
takes about eight passes over the rows (a division by the broadcast norm, the norm's own
backward, a mask for the clamp), and a batched matrix-vector ``bmm`` is a slow kernel for
K x d matrices; here each is the same function with its gradient written out:

* :func:`unit_rows`: forward exactly ``F.normalize(x, dim=-1)`` (bit-identical),
  backward ``(g - y <y, g>) / n`` in three passes (``g / eps`` for rows clamped at eps);
* :func:`row_dot`: ``s[b, k] = <u[b], v[b, k]>``, backward ``g[b, k] u[b]`` (one broadcast
  product) and ``sum_k g[b, k] v[b, k]``.

The gradients are the same functions; float sums run in a different order, so values can
differ in the last bits (the golden run's losses agree to 1e-6, its metrics exactly).

References:
    Ji et al., arXiv 2607.00448, 2026, section "Reported results" (the method's cost is
    training throughput with per-example negatives) and section "Loss" (cosine logits).
    Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
    Recommendations", RecSys 2019 (L2-normalised towers).

Example:
    >>> x = torch.randn(5, 3, requires_grad=True)
    >>> y = unit_rows(x)
    >>> torch.equal(y, torch.nn.functional.normalize(x, dim=-1))
    True
    >>> u, v = torch.randn(2, 3), torch.randn(2, 4, 3)
    >>> torch.allclose(row_dot(u, v), torch.einsum("bd,bkd->bk", u, v), atol=1e-6)
    True
"""

from __future__ import annotations

from typing import Any

import torch

EPS = 1e-12  # F.normalize's default


class _UnitRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        denom = norm.clamp_min(EPS)
        y = x / denom.expand_as(x)  # F.normalize's exact arithmetic
        ctx.save_for_backward(y, denom, norm > EPS)
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        y, denom, active = ctx.saved_tensors
        dot = torch.linalg.vecdot(y, grad, dim=-1).unsqueeze(-1) * active
        return torch.addcmul(grad, y, dot, value=-1.0).div_(denom)


class _RowDot(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, user: torch.Tensor, vecs: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(user, vecs)
        return torch.linalg.vecdot(vecs, user.unsqueeze(-2), dim=-1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        user, vecs = ctx.saved_tensors
        g_user = g_vecs = None
        if ctx.needs_input_grad[0]:
            g_user = torch.bmm(grad.unsqueeze(-2), vecs).squeeze(-2)
        if ctx.needs_input_grad[1]:
            g_vecs = grad.unsqueeze(-1) * user.unsqueeze(-2)
        return g_user, g_vecs


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """``F.normalize(x, dim=-1)`` with a three-pass backward; x float [..., d]."""
    return _UnitRows.apply(x)


def row_dot(user: torch.Tensor, vecs: torch.Tensor) -> torch.Tensor:
    """Per-example dot products [B, K] of user vectors [B, d] with their own candidates'
    vectors [B, K, d]."""
    return _RowDot.apply(user, vecs)
