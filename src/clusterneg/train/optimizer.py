"""How the towers' parameters are updated: ``adam`` (dense fused Adam, the default) or
``lazy-adam`` (Adam on the embedding rows a batch looked up, dense Adam on the rest).

Dense Adam rewrites every row of every embedding table each step, looked up or not: on
amazon-3cat (two 42k x 64 tables) that is 3.5-4 ms of an 8 ms in-batch step, the largest
single cost (``docs/cost.md``), and at 10^6 items it is a pass over 10^8 floats a step,
whatever the batch. ``lazy-adam`` gives the tables sparse gradients and steps them with
:class:`LazyAdam`, which updates the moments and weights of the rows in the batch only: the
"lazy Adam" of TensorFlow Addons' ``LazyAdam`` and torch's :class:`torch.optim.SparseAdam`
(the same update; a test checks it), the usual choice for large id tables. SparseAdam does
it with sparse-tensor arithmetic, which on amazon-3cat cost about as much as the dense pass
it replaces (a profile not committed); :class:`LazyAdam` gathers the rows, updates them and
scatters them back.

Lazy Adam is not dense Adam's update: a row not looked up keeps its weights instead of
drifting on its decaying moments, so metrics move (``bench/`` measures by how much).

The dense parameters (the content projection) keep fused Adam; both optimisers live in one
:class:`JointOptimizer` so checkpoints hold both.

References:
    Kingma & Ba, "Adam", ICLR 2015 (the update); TensorFlow Addons ``LazyAdam`` (the
    sparse-row variant); Ji et al., arXiv 2607.00448, 2026, section "Reported results"
    (the method's cost is measured in training throughput).

Example:
    >>> import torch
    >>> from clusterneg.model import ModelConfig, TwoTower
    >>> from clusterneg.train.config import TrainConfig
    >>> model = TwoTower(ModelConfig(dim=4, user_id=True, history_len=0), 3, 5)
    >>> opt = make_optimizer(model, TrainConfig(optimizer="lazy-adam"))
    >>> before = model.item_emb.weight.detach().clone()
    >>> model.item_vectors(torch.tensor([1])).sum().backward()
    >>> opt.step()
    >>> (model.item_emb.weight != before).any(dim=1).tolist()  # only the looked-up row moved
    [False, True, False, False, False]

Embedding-table gradients in a persistent buffer
------------------------------------------------

Embedding-table gradients written into one persistent dense buffer per table (CPU speed).

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

import math
from typing import Any

import torch
from torch import nn

from clusterneg.errors import ConfigError
from clusterneg.train.config import TrainConfig


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimiser ``cfg.optimizer`` names for ``model``.

    ``adam``: Adam over every parameter; the fused kernel (one pass over each parameter, the
    same update) where this torch build has it for the model's device. ``lazy-adam``: switches
    every ``nn.Embedding`` of ``model`` to sparse gradients, steps them with
    :class:`LazyAdam` and the other parameters with Adam (:class:`JointOptimizer`); it has
    no weight decay.
    """
    if cfg.optimizer == "adam":
        return _adam(list(model.parameters()), cfg)
    cfg.validate()  # an unknown name, or lazy-adam with weight decay
    tables: list[torch.nn.Parameter] = []
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            module.sparse = True
            tables.append(module.weight)
    ids = {id(t) for t in tables}
    dense = [p for p in model.parameters() if id(p) not in ids]
    parts: list[torch.optim.Optimizer] = []
    if tables:
        parts.append(LazyAdam(tables, lr=cfg.lr))
    if dense:
        parts.append(_adam(dense, cfg))
    return JointOptimizer(parts)  # type: ignore[return-value]


def _adam(params: list[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    try:
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


class LazyAdam(torch.optim.Optimizer):
    """Adam on the rows of a sparse gradient only (``torch.optim.SparseAdam``'s update, one
    step counter per table for the bias correction), computed as row gathers and scatters:
    O(rows in the batch x d) work, nothing over the rest of the table.

    Example:
        >>> emb = torch.nn.Embedding(3, 2, sparse=True)
        >>> _ = torch.nn.init.zeros_(emb.weight)
        >>> opt = LazyAdam([emb.weight], lr=0.5)
        >>> (emb(torch.tensor([1, 1])) * torch.tensor([[1.0, -2.0], [1.0, 1.0]])).sum().backward()
        >>> opt.step()
        >>> emb.weight.round(decimals=4).tolist()  # row 1's gradient [2, -1]: -lr * sign
        [[0.0, 0.0], [-0.5, 0.5], [0.0, 0.0]]
    """

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        """One update of every looked-up row; a dense gradient is a ConfigError."""
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if not p.grad.is_sparse:
                    raise ConfigError("lazy-adam needs sparse gradients (nn.Embedding with "
                                      "sparse=True); use --optimizer adam")
                grad = p.grad.coalesce()  # one row per looked-up id, repeats summed
                rows, g = grad.indices()[0], grad.values()
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p,
                                                           memory_format=torch.preserve_format)
                state["step"] += 1
                m = state["exp_avg"].index_select(0, rows).mul_(beta1).add_(g, alpha=1 - beta1)
                v = state["exp_avg_sq"].index_select(0, rows).mul_(beta2).addcmul_(
                    g, g, value=1 - beta2)
                state["exp_avg"].index_copy_(0, rows, m)
                state["exp_avg_sq"].index_copy_(0, rows, v)
                step = state["step"]
                size = group["lr"] * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
                p.index_add_(0, rows, m.div_(v.sqrt_().add_(group["eps"])), alpha=-size)


class JointOptimizer:
    """Several torch optimisers over disjoint parameters, stepped, zeroed and checkpointed as
    one (the subset of ``torch.optim.Optimizer`` the loops and checkpoints use)."""

    def __init__(self, parts: list[torch.optim.Optimizer]) -> None:
        self.parts = parts

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [g for p in self.parts for g in p.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parts:
            p.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for p in self.parts:
            p.step()

    def state_dict(self) -> dict[str, Any]:
        return {"parts": [p.state_dict() for p in self.parts]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("parts")
        if saved is None or len(saved) != len(self.parts):
            raise ConfigError("the checkpoint's optimizer state is not this optimizer's "
                              "(was it written with another --optimizer?)")
        for p, s in zip(self.parts, saved, strict=True):
            p.load_state_dict(s)


# --- Embedding-table gradients in a persistent buffer (dense Adam on the CPU) ----------------

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
