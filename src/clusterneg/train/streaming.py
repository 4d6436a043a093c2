"""Train from a stream of Parquet shards, with item frequencies estimated online.

The in-memory trainer (``clusterneg.train.trainer``) shuffles indices over arrays it holds;
this loop takes batches from :class:`~clusterneg.data.stream.ParquetStream` instead, so
memory stays flat in the data size: what grows with the data is only time. The step itself is
the trainer's :func:`~clusterneg.train.trainer.train_step` (same sampler, loss, pool).

The logQ correction needs each item's sampling probability. When the counts are not known up
front, :class:`~clusterneg.train.frequency.StreamingFrequency` estimates them from the stream,
and each step writes the estimates of the batch's items into the sampler context's
``item_log_freq`` (read by the loss) and the sampler's ``item_freq`` (read by its in-batch
proposal) before the step, so the correction uses the running estimate.

A streamed run is resumable (:func:`stream_payload`, :func:`restore_stream`): besides the
trainer's state it checkpoints the estimator and the installed estimates, and its data cursor
is (epoch, batches taken from the stream), replayed from the seeded stream on resume.

References:
    Yi et al., RecSys 2019, section 4 (streaming frequency estimation for logQ). Ji et al.,
    arXiv 2607.00448, 2026, section "Method" (the pool is refreshed by each training batch).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np
import torch

from clusterneg.errors import ConfigError
from clusterneg.model import ModelConfig, TwoTower
from clusterneg.samplers import build_sampler
from clusterneg.samplers.protocol import Batch, SamplerContext
from clusterneg.train.config import TrainConfig
from clusterneg.train.frequency import StreamingFrequency
from clusterneg.train.optimizer import make_optimizer
from clusterneg.train.state import Checkpointing, LoopState, restore_training, training_payload
from clusterneg.train.trainer import TrainResult, train_step


@dataclass
class StreamData:
    """What a streamed run knows besides the stream.

    Args:
        n_users, n_items: id space sizes (ids in the stream are contiguous).
        item_cluster: int64 [N] cluster per item, or None.
        n_clusters: C.
        content: float32 [N, d] content features, or None.
        item_log_freq: float32 [N] known log frequencies, or None to estimate online.
    """

    n_users: int
    n_items: int
    item_cluster: np.ndarray | None = None
    n_clusters: int = 0
    content: np.ndarray | None = None
    item_log_freq: torch.Tensor | None = None


def stream_context(data: StreamData, cfg: TrainConfig) -> SamplerContext:
    """The sampler context of a streamed run (no per-user CSR: masking user items needs one)."""
    log_freq = (data.item_log_freq.clone().float() if data.item_log_freq is not None
                else torch.full((data.n_items,), -float(np.log(data.n_items))))
    cluster = (None if data.item_cluster is None
               else torch.as_tensor(np.array(data.item_cluster)).long())
    return SamplerContext(
        n_items=data.n_items, item_log_freq=log_freq.to(cfg.device), item_cluster=cluster,
        n_clusters=data.n_clusters if cluster is not None else 0, batch_size=cfg.batch_size,
        seed=cfg.seed, device=cfg.device)


def train_stream(
    stream: Any, data: StreamData, model_cfg: ModelConfig, cfg: TrainConfig,
    frequency: StreamingFrequency | None = None, progress: Any | None = None,
    checkpoint: Checkpointing | None = None,
) -> TrainResult:
    """Train for ``cfg.epochs`` passes (or ``cfg.max_steps`` steps) over ``stream``.

    Resumable (``checkpoint``): the cursor is (epoch, batches of that epoch already taken
    from the stream). The stream's order is a function of (seed, epoch, rank) only, so a
    resumed run replays the epoch's batches up to the cursor without training on them
    (reading, not computing: O(cursor) I/O) and then trains exactly the batches, negatives
    and frequency estimates the interrupted run would have, ending with the same weights.

    Args:
        stream: a :class:`~clusterneg.data.stream.ParquetStream` (anything with
            ``epoch(e)`` yielding (users, items) int64 arrays, the same for the same e).
        data: sizes, clusters, features, and known frequencies (or None).
        model_cfg: tower shapes; ``history_len`` must be 0 (a history needs the whole data).
        cfg: training options; no validation here (evaluate the returned model).
        frequency: the online estimator, required when ``data.item_log_freq`` is None.
        progress: a ``rich.progress.Progress``, or None.
        checkpoint: write resumable state every N steps and/or resume from the newest one.
    """
    model, ctx, sampler, opt = build_stream_run(data, model_cfg, cfg, frequency)
    result = TrainResult(model=model, sampler=sampler)
    st = LoopState()
    if checkpoint is not None and checkpoint.resume:
        st = restore_stream(checkpoint.load(), model, opt, sampler, ctx, frequency, result)
        st.to(cfg.device)
    task = progress.add_task(f"stream {cfg.sampler}", total=cfg.max_steps,
                             completed=result.steps) if progress else None
    t0 = time.perf_counter()
    while st.epoch < cfg.epochs:
        t_ep = time.perf_counter()
        for users, items in islice(stream.epoch(st.epoch), st.position, None):
            if _step_limit(cfg, result):  # also when resumed from the last step's state
                break
            st.position += 1
            if len(users) < 2:
                continue
            batch = Batch(torch.from_numpy(users).to(cfg.device),
                          torch.from_numpy(items).to(cfg.device), step=result.steps)
            if frequency is not None:
                observe_frequencies(frequency, ctx, sampler, batch)
            out = train_step(model, sampler, batch, opt, ctx, cfg.logq_correction)
            st.add_loss(out.loss)  # on the device: no host sync per step
            result.steps += 1
            result.examples += len(users)
            if progress is not None:
                progress.update(task, advance=1)
            if checkpoint is not None and checkpoint.due(result.steps):
                checkpoint.save(result.steps, stream_payload(model, opt, sampler, ctx,
                                                             frequency, result, st))
        result.train_seconds += time.perf_counter() - t_ep
        result.epochs.append({"epoch": st.epoch, "loss": st.mean_loss(),
                              "train_seconds": result.train_seconds})
        st.next_epoch()
        if _step_limit(cfg, result):
            break
    result.seconds = time.perf_counter() - t0
    result.best_epoch = len(result.epochs) - 1
    return result


def _step_limit(cfg: TrainConfig, result: TrainResult) -> bool:
    return cfg.max_steps is not None and result.steps >= cfg.max_steps


def build_stream_run(data: StreamData, model_cfg: ModelConfig, cfg: TrainConfig,
           frequency: StreamingFrequency | None) -> tuple[TwoTower, SamplerContext, Any, Any]:
    """The seeded towers, sampler context, sampler and optimiser of a streamed run."""
    cfg.validate()
    if model_cfg.history_len > 0:
        raise ConfigError("streamed training needs history_len=0 (a user history is built "
                          "from the whole training data)")
    if data.item_log_freq is None and frequency is None:
        raise ConfigError("streamed training needs known item frequencies or an estimator")
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    content = None if data.content is None else torch.as_tensor(data.content).float()
    model = TwoTower(model_cfg, data.n_users, data.n_items, content=content).to(cfg.device)
    ctx = stream_context(data, cfg)
    sampler = build_sampler(cfg.sampler, ctx, **cfg.sampler_options)
    if frequency is not None and hasattr(sampler, "use_count_tables"):
        # the estimates change every step: per-item logQ tables would be rebuilt each time
        sampler.use_count_tables = False
    return model, ctx, sampler, make_optimizer(model, cfg)


def stream_payload(model: TwoTower, opt: torch.optim.Optimizer, sampler: Any,
                   ctx: SamplerContext, frequency: StreamingFrequency | None,
                   result: TrainResult, st: LoopState) -> dict[str, Any]:
    """A streamed run's resumable state: the trainer's (model, optimiser, sampler and pool,
    RNGs, cursor) plus the frequency estimator and the estimates installed so far (the loss's
    ``item_log_freq`` and the in-batch proposal's ``item_freq``, which hold each item's
    estimate as of its last sighting, so they are not a function of the estimator alone)."""
    item_freq = getattr(sampler, "item_freq", None)
    return training_payload(model, opt, sampler, result, st) | {
        "frequency": None if frequency is None else frequency.state_dict(),
        "item_log_freq": ctx.item_log_freq,
        "item_freq": item_freq if isinstance(item_freq, torch.Tensor) else None}


def restore_stream(payload: dict[str, Any], model: TwoTower, opt: torch.optim.Optimizer,
                   sampler: Any, ctx: SamplerContext, frequency: StreamingFrequency | None,
                   result: TrainResult) -> LoopState:
    """Load a :func:`stream_payload` into freshly built objects (tensors copied in place,
    so the proposals that share them see the restored values); returns the cursor."""
    st = restore_training(payload, model, opt, sampler, result)
    if (payload["frequency"] is None) != (frequency is None):
        raise ConfigError("cannot resume: the checkpoint and this run differ in whether item "
                          "frequencies are estimated online")
    if frequency is not None:
        frequency.load_state_dict(payload["frequency"])
    ctx.item_log_freq.copy_(payload["item_log_freq"])
    if payload["item_freq"] is not None:
        sampler.item_freq.copy_(payload["item_freq"])
    return st


def observe_frequencies(frequency: StreamingFrequency, ctx: SamplerContext, sampler: Any,
                        batch: Batch) -> None:
    """Update the estimator with the batch, then :func:`install_estimates` for its items."""
    frequency.update(batch.items, batch.step)
    install_estimates(frequency, ctx, sampler, batch.items)


def install_estimates(frequency: StreamingFrequency, ctx: SamplerContext, sampler: Any,
                      items: torch.Tensor) -> None:
    """Write the estimates of ``items`` where the loss (``ctx.item_log_freq``) and the
    sampler's in-batch proposal (``sampler.item_freq``) read them."""
    p = frequency.probability(items).to(ctx.item_log_freq.device)
    ctx.item_log_freq[items] = p.log()
    item_freq = getattr(sampler, "item_freq", None)
    if isinstance(item_freq, torch.Tensor):
        item_freq[items.to(item_freq.device)] = p.to(item_freq.device)
