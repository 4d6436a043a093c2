"""The training loop: seeded, Adam, per-epoch validation, early stopping, best-epoch restore.

One step is :func:`train_step`: the sampler proposes negative blocks for the batch, the
towers embed users, positives and negatives, the sampled softmax (``clusterneg.loss``) is
minimised, and the sampler then observes the batch (pool refresh, FIFO push). The loop never
touches test data: the best epoch is chosen on the validation split.

References:
    Ji et al., arXiv 2607.00448, 2026, section "Method" (the pool is updated by every training
    batch, Algorithm 1, and sampled for the next, Algorithm 2).

How the parameters are updated (dense fused Adam, gradients in a persistent buffer, or lazy
Adam on the looked-up rows) is ``clusterneg.train.optimizer``.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from clusterneg.data.dataset import Interactions
from clusterneg.data.user_items import UserItems
from clusterneg.loss import LossOutput, sampler_loss
from clusterneg.model import ModelConfig, TwoTower, build_history
from clusterneg.samplers import build_sampler
from clusterneg.samplers.protocol import Batch, NegativeBlock, NegativeSampler, SamplerContext
from clusterneg.train.config import TrainConfig
from clusterneg.train.optimizer import make_optimizer, reuse_embedding_grads
from clusterneg.train.state import (
    Checkpointing,
    LoopState,
    restore_training,
    training_payload,
)

log = logging.getLogger(__name__)

EvalFn = Callable[[TwoTower], dict[str, float]]


@dataclass
class TrainData:
    """Everything the loop needs, already as contiguous indices.

    Args:
        n_users, n_items: sizes of the id spaces.
        train: training interactions.
        content: float32 [N, d_c] item content embeddings, or None.
        item_cluster: int64 [N] cluster id per item, or None.
        n_clusters: number of clusters C.
        user_items: each user's training items (None: built here from ``train``).
    """

    n_users: int
    n_items: int
    train: Interactions
    content: np.ndarray | None = None
    item_cluster: np.ndarray | None = None
    n_clusters: int = 0
    user_items: UserItems | None = None

    def __post_init__(self) -> None:
        if self.user_items is None:
            self.user_items = UserItems.from_interactions(self.train, self.n_users, self.n_items)


@dataclass
class TrainResult:
    """The trained model (best validation epoch restored) and how training went."""

    model: TwoTower
    sampler: NegativeSampler
    epochs: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = -1
    best_valid: float = float("nan")
    seconds: float = 0.0
    train_seconds: float = 0.0
    examples: int = 0
    steps: int = 0

    @property
    def examples_per_s(self) -> float:
        return self.examples / self.train_seconds if self.train_seconds > 0 else 0.0


def item_log_freq(items: np.ndarray, n_items: int) -> torch.Tensor:
    """log of each item's share of training interactions, float32 [N]; unseen items count
    as 0.5 so the log stays finite (they never appear as in-batch positives)."""
    counts = np.bincount(items, minlength=n_items).astype(np.float64)
    counts = np.maximum(counts, 0.5)
    return torch.from_numpy(np.log(counts / counts.sum())).float()


def sampler_context(data: TrainData, cfg: TrainConfig) -> SamplerContext:
    """Build the :class:`SamplerContext` a sampler may read (frequencies, clusters, the users'
    training items)."""
    cluster = None if data.item_cluster is None else torch.as_tensor(data.item_cluster).long()
    return SamplerContext(
        n_items=data.n_items,
        item_log_freq=item_log_freq(data.train.item, data.n_items).to(cfg.device),
        item_cluster=cluster,
        n_clusters=int(data.n_clusters) if cluster is not None else 0,
        user_items=data.user_items,
        item_rows=None,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        device=cfg.device,
    )


def build_model(data: TrainData, model_cfg: ModelConfig, seed: int) -> TwoTower:
    """A freshly initialised :class:`TwoTower` (seeded) with the users' training history."""
    torch.manual_seed(seed)
    hist = None
    if model_cfg.history_len > 0:
        tr = data.train
        hist = build_history(tr.user, tr.item, tr.order, data.n_users, data.n_items,
                             model_cfg.history_len)
    content = None if data.content is None else torch.as_tensor(data.content).float()
    return TwoTower(model_cfg, data.n_users, data.n_items, content=content, history=hist)


def train_step(
    model: TwoTower, sampler: NegativeSampler, batch: Batch, optimizer: torch.optim.Optimizer,
    ctx: SamplerContext, logq_correction: bool, diagnostics: bool = False,
) -> LossOutput:
    """One optimiser step of the sampled softmax with the sampler's negative blocks.

    The item tower runs once over the positives and every block's candidates
    (:func:`candidate_vectors`); ``diagnostics`` also computes the loss's per-block
    statistics (mean cosines, softmax mass shares), which the loop itself never reads.
    """
    model.train()
    blocks = sampler.negatives(batch, model)
    out, pos = batch_loss(model, sampler, batch, blocks, ctx, logq_correction, diagnostics)
    optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    optimizer.step()
    sampler.observe(batch, model, pos.detach())
    return out


def batch_loss(
    model: TwoTower, sampler: NegativeSampler, batch: Batch, blocks: list[NegativeBlock],
    ctx: SamplerContext, logq_correction: bool, diagnostics: bool = False,
) -> tuple[LossOutput, torch.Tensor]:
    """The sampled softmax of a batch and its negative blocks, and the positives' vectors
    (the differentiable part of a step, so DistributedDataParallel can wrap it)."""
    user = model.user_vectors(batch.users, exclude_items=batch.items)
    pos, vecs = candidate_vectors(model, batch.items, blocks)
    out = sampler_loss(sampler, batch, blocks, user, pos, vecs, model.temperature,
                       ctx.item_log_freq, logq_correction=logq_correction,
                       diagnostics=diagnostics)
    return out, pos


def candidate_vectors(
    model: TwoTower, items: torch.Tensor, blocks: list[NegativeBlock],
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Item vectors of the positives [B, d] and of each block's candidates, from ONE
    item-tower call over every candidate the tower must embed.

    Blocks with precomputed ``embeddings`` (a cross-batch FIFO) use them. On the CPU, when the
    item tower has a content projection and no block brings its own tower input ``rows``,
    the ids are deduplicated first (an item that is a positive and a negative, or drawn
    twice, goes through the projection once; the gradient reaches it through the gather);
    otherwise (ID-only towers, where a row costs less than the sort and the extra gather of
    deduplicating it; rows; or an accelerator, where ``unique`` would cost a host sync)
    positives and candidates go through the tower in one concatenated call.
    """
    todo = [b for b in blocks if b.embeddings is None]
    if not todo:
        return model.item_vectors(items), [b.embeddings for b in blocks]
    ids = torch.cat([items.reshape(-1)] + [b.item_ids.reshape(-1) for b in todo])
    if all(b.rows is None for b in todo):
        if ids.device.type == "cpu" and getattr(model, "content_proj", None) is not None:
            uniq, inverse = torch.unique(ids, return_inverse=True)
            flat = model.item_vectors(uniq).index_select(0, inverse)
        else:
            flat = model.item_vectors(ids)
    else:
        rows = [model.content_rows(items)] + [
            b.rows.reshape(b.item_ids.numel(), -1) if b.rows is not None
            else model.content_rows(b.item_ids.reshape(-1)) for b in todo]
        flat = model.item_vectors(ids, torch.cat(rows))
    parts = flat.split([items.numel()] + [b.item_ids.numel() for b in todo])
    shaped = iter(p.view(*b.item_ids.shape, -1) for p, b in zip(parts[1:], todo, strict=True))
    vecs = [b.embeddings if b.embeddings is not None else next(shaped) for b in blocks]
    return parts[0].view(*items.shape, -1), vecs


def _epoch_batches(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """A shuffle order split into batches; a last batch smaller than 2 is dropped."""
    return [b for b in order.split(batch_size) if len(b) >= 2]


def train(
    data: TrainData,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    eval_fn: EvalFn | None = None,
    progress: Any | None = None,
    sampler_options: dict[str, Any] | None = None,
    checkpoint: Checkpointing | None = None,
    label: str | None = None,
) -> TrainResult:
    """Train a two-tower model with the configured sampler; keep the best validation epoch.

    Args:
        data: training data (:class:`TrainData`).
        model_cfg: tower shapes and temperature.
        cfg: training options (sampler, epochs, batch size, early stopping, seed).
        eval_fn: model -> validation metrics (must contain ``cfg.valid_metric``); None trains
            for ``cfg.epochs`` without early stopping.
        progress: a ``rich.progress.Progress`` to report to, or None for silence.
        label: the name log lines and the progress bar show (default: the sampler's name;
            ``compare`` passes a labelled spec such as ``goobs@cached``).
        checkpoint: write resumable state every N steps and/or resume from the newest one
            (:class:`~clusterneg.train.state.Checkpointing`), or None.

    Returns:
        :class:`TrainResult` with the best-epoch model restored.
    """
    cfg.validate()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    model = build_model(data, model_cfg, cfg.seed).to(cfg.device)
    if torch.device(cfg.device).type == "cpu" and cfg.optimizer == "adam":
        reuse_embedding_grads(model)  # no fresh N x d gradient per step (docs/cost.md)
    ctx = sampler_context(data, cfg)
    opts = dict(cfg.sampler_options) | dict(sampler_options or {})
    sampler = build_sampler(cfg.sampler, ctx, **opts)
    opt = make_optimizer(model, cfg)
    result = TrainResult(model=model, sampler=sampler)
    _loop(data, cfg, model, sampler, ctx, opt, eval_fn, progress, result, checkpoint,
          label or cfg.sampler)
    return result


def _loop(
    data: TrainData, cfg: TrainConfig, model: TwoTower, sampler: NegativeSampler,
    ctx: SamplerContext, opt: torch.optim.Optimizer, eval_fn: EvalFn | None,
    progress: Any | None, result: TrainResult, ckpt: Checkpointing | None = None,
    name: str = "",
) -> None:
    gen = torch.Generator().manual_seed(cfg.seed)
    users = torch.from_numpy(data.train.user).to(cfg.device)  # moved once, not per step
    items = torch.from_numpy(data.train.item).to(cfg.device)
    weights = torch.from_numpy(data.train.weight).to(cfg.device)
    unit_weights = bool((weights == 1).all())
    steps_per_epoch = math.ceil(len(users) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs if cfg.max_steps is None else cfg.max_steps
    name = name or cfg.sampler
    task = progress.add_task(f"train {name}", total=total) if progress else None
    st, t0 = LoopState(), time.perf_counter()
    if ckpt is not None and ckpt.resume:
        st = restore_training(ckpt.load(), model, opt, sampler, result).to(cfg.device)
        if progress is not None:
            progress.update(task, completed=result.steps)
    while st.epoch < cfg.epochs:
        t_ep = time.perf_counter()
        if st.order is None:  # a fresh epoch (a resumed one keeps its order and cursor)
            st.order = torch.randperm(len(users), generator=gen)
        else:
            gen.set_state(st.shuffle_state)
        st.shuffle_state = gen.get_state()
        for idx in _epoch_batches(st.order, cfg.batch_size)[st.position:]:
            batch = Batch(users[idx], items[idx], None if unit_weights else weights[idx],
                          step=result.steps)
            out = train_step(model, sampler, batch, opt, ctx, cfg.logq_correction)
            st.add_loss(out.loss)  # on the device: no host sync per step
            st.position += 1
            result.steps += 1
            result.examples += len(idx)
            if progress is not None:
                progress.update(task, advance=1)
            if ckpt is not None and ckpt.due(result.steps):
                ckpt.save(result.steps, training_payload(model, opt, sampler, result, st))
            if cfg.max_steps is not None and result.steps >= cfg.max_steps:
                break
        result.train_seconds += time.perf_counter() - t_ep
        if _end_epoch(cfg, model, eval_fn, result, st, name):
            break
    if progress is not None:
        progress.update(task, completed=total)
    if st.best_state is not None:
        model.load_state_dict(st.best_state)
    else:
        result.best_epoch = len(result.epochs) - 1
    result.seconds = time.perf_counter() - t0


def _end_epoch(cfg: TrainConfig, model: TwoTower, eval_fn: EvalFn | None,
               result: TrainResult, st: LoopState, name: str) -> bool:
    """Record the epoch, validate, update early stopping; True when training should stop."""
    epoch = st.epoch
    row: dict[str, Any] = {"epoch": epoch, "loss": st.mean_loss(),
                           "train_seconds": result.train_seconds}
    stop = cfg.max_steps is not None and result.steps >= cfg.max_steps
    if eval_fn is not None and ((epoch + 1) % cfg.eval_every == 0 or stop):
        metrics = eval_fn(model)
        row["valid"] = metrics
        score = metrics[cfg.valid_metric]
        if not (score <= result.best_valid):  # first score, or an improvement
            result.best_valid, result.best_epoch, st.bad = score, epoch, 0
            st.best_state = copy.deepcopy(model.state_dict())
        else:
            st.bad += 1
        log.info("%s seed %d epoch %d/%d: loss %.4f, valid %s %.4f (best %.4f at epoch %d)",
                 name, cfg.seed, epoch + 1, cfg.epochs, row["loss"],
                 cfg.valid_metric, score, result.best_valid, result.best_epoch + 1)
    result.epochs.append(row)
    st.next_epoch()
    return stop or st.bad >= cfg.patience
