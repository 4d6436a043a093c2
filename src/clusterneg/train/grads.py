"""Embedding-table gradients written into one persistent dense buffer per table (CPU speed).

A training step's dense gradient of an N x d embedding table is a fresh N x d allocation,
zero-filled, then scattered into. On the CPU a fresh allocation that size (10.8 MB for 42k x
64 floats) comes back from the operating system as new pages, and the zero fill pays a page
fault per 4 kB page: 1-4 ms a step on the development machine for the users' history table
alone, against 0.15 ms to zero memory that is already mapped (``docs/cost.md``). Whether the
allocator hands back warm or fresh memory depends on what else the step allocated, so the
samplers that allocate more (per-example negatives) paid it and in-batch mostly did not.

:func:`reuse_embedding_grads` makes the tables' lookups produce sparse gradients (the looked
up rows and their gradients, no N x d work in the backward pass) and, once the gradient is
accumulated, adds them into a buffer allocated once. The optimiser still sees a dense
gradient with the same values: rows never looked up are zero, a row looked up several times
gets the sum of its gradients (summed in lookup order, which can differ from the dense
kernel's order in the last bits). Dense Adam over the whole table is unchanged.

References:
    Ji et al., arXiv 2607.00448, 2026, section "Reported results" (the method's cost is
    measured in training throughput, so per-step overhead that is not the method's is
    removed before measuring it).

Example:
    >>> import torch
    >>> emb = torch.nn.Embedding(5, 2)
    >>> reuse_embedding_grads(emb)
    1
    >>> emb(torch.tensor([1, 1, 3])).sum().backward()
    >>> emb.weight.grad.tolist()
    [[0.0, 0.0], [2.0, 2.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
"""

from __future__ import annotations

import torch
from torch import nn


def reuse_embedding_grads(model: nn.Module) -> int:
    """Switch every ``nn.Embedding`` of ``model`` to sparse gradients densified into a
    persistent buffer; returns how many tables were switched.

    Not for ``DistributedDataParallel`` (its reducer expects the dense gradients it
    registered for) nor for optimisers that want sparse gradients.
    """
    n = 0
    for module in model.modules():
        if isinstance(module, nn.Embedding) and not module.sparse:
            module.sparse = True
            module.weight.register_post_accumulate_grad_hook(_Densify(module.weight))
            n += 1
    return n


class _Densify:
    """Post-accumulate hook: replace a sparse ``.grad`` by the same values in a dense buffer
    allocated on first use and reused by every later step.

    Only the rows the previous gradient wrote are zeroed again when they were fewer than a
    tenth of the table (scattered row writes cost about ten times a contiguous fill per
    row; otherwise the whole buffer is zeroed): the rest of the buffer is still zero, since
    neither Adam nor the loop writes into a gradient (a caller's in-place scaling, e.g.
    clipping, keeps zeros).
    """

    def __init__(self, weight: torch.Tensor) -> None:
        self.shape, self.dtype, self.device = weight.shape, weight.dtype, weight.device
        self.buffer: torch.Tensor | None = None
        self.touched: torch.Tensor | None = None

    def __call__(self, weight: torch.Tensor) -> None:
        grad = weight.grad
        if grad is None or not grad.is_sparse:  # already dense: accumulated into the buffer
            return
        rows = grad._indices()[0]
        if self.buffer is None:
            self.buffer = torch.zeros(self.shape, dtype=self.dtype, device=self.device)
        elif self.touched is None or 10 * self.touched.numel() > self.shape[0]:
            self.buffer.zero_()
        else:
            self.buffer.index_fill_(0, self.touched, 0)
        self.buffer.index_add_(0, rows, grad._values())
        self.touched = rows
        weight.grad = self.buffer
