"""Distributed training with torchrun: DistributedDataParallel towers, one global pool.

Each rank streams its own row groups (``ParquetStream(rank=, world=)``), computes the sampled
softmax of its batch inside DistributedDataParallel (gradients averaged across ranks; gloo on
CPU, nccl on CUDA), and after the step all-gathers the batch's (item id, cluster) pairs, plus
the pool rows when the pool stores rows, and writes the gathered batches into its pool in
rank order. Every rank thus applies the same writes in the same order (Algorithm 1 over the
global batch), so all ranks hold the same global pool without ever sending the pool itself;
what crosses the network per step is ``world x B x (16 + 4 r)`` bytes (ids and clusters as
int64, ``r`` float32 row entries when rows are stored). Negatives are then drawn locally,
from a generator seeded per rank (``seed + rank`` after a common preload), so ranks draw
different negatives, deterministically. Item frequencies for logQ are estimated online from
the gathered (global) batches. Ranks stop together at the shortest rank's last batch
(DistributedDataParallel needs every rank in every step).

Run (one machine, two processes; across nodes add ``--nnodes``/``--rdzv-endpoint``)::

    torchrun --nproc-per-node 2 -m clusterneg.train.distributed SYNTH_DIR --out RUN \\
        --sampler cluster-goobs --steps 1000

References:
    Ji et al., arXiv 2607.00448, 2026, section "Method" (the GOOBS pool refreshed by every
    training batch, Algorithm 1; production training at billions of examples). DESIGN.md,
    "Real time and scale" (torchrun + DDP; each rank all-gathers the batch's item rows).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from clusterneg.model import ModelConfig, TwoTower
from clusterneg.samplers import build_sampler
from clusterneg.samplers.protocol import Batch, NegativeBlock, SamplerContext
from clusterneg.train.config import TrainConfig
from clusterneg.train.frequency import StreamingFrequency
from clusterneg.train.streaming import StreamData, install_estimates, stream_context
from clusterneg.train.trainer import TrainResult, batch_loss, make_optimizer


def init(device: str = "cpu") -> tuple[int, int]:
    """Join the torchrun process group (nccl for CUDA, gloo otherwise): (rank, world)."""
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    if device.startswith("cuda"):
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return dist.get_rank(), dist.get_world_size()


def all_gather_rows(x: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``x`` [n_rank, ...] in rank order (n may differ by rank)."""
    n = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, n)
    top = int(max(int(s) for s in sizes))
    padded = torch.zeros((top, *x.shape[1:]), dtype=x.dtype, device=x.device)
    padded[: x.shape[0]] = x
    out = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(out, padded)
    return torch.cat([o[: int(s)] for o, s in zip(out, sizes, strict=True)])


class _BatchLoss(nn.Module):
    """The differentiable part of a step as one ``forward``, for DistributedDataParallel."""

    def __init__(self, model: TwoTower, sampler: Any, ctx: SamplerContext, logq: bool) -> None:
        super().__init__()
        self.model, self.sampler, self.ctx, self.logq = model, sampler, ctx, logq

    def forward(self, batch: Batch, blocks: list[NegativeBlock]) -> torch.Tensor:
        return batch_loss(self.model, self.sampler, batch, blocks, self.ctx, self.logq)[0].loss


class GlobalPoolSync:
    """After each step: all-gather the batch's items and write them into the local pool, so
    the pools of all ranks stay identical. Samplers without a pool observe locally, without
    item vectors: distributed runs support in-batch, mixed, goobs and cluster-goobs.

    Args:
        sampler: the rank's sampler (``goobs`` / ``cluster-goobs`` have a ``pool``).
    """

    def __init__(self, sampler: Any) -> None:
        self.sampler = sampler
        self.pool = getattr(sampler, "pool", None)

    def gather(self, batch: Batch) -> torch.Tensor:
        """int64 [sum of batch sizes, 2]: every rank's (item id, cluster), in rank order."""
        items = batch.items
        clusters = (self.sampler._clusters_of(items) if self.pool is not None
                    else torch.zeros_like(items))
        return all_gather_rows(torch.stack([items, clusters], dim=1))

    def observe(self, batch: Batch, pairs: torch.Tensor) -> None:
        """Write the gathered batch into the pool (Algorithm 1 over the global batch)."""
        if self.pool is None:
            self.sampler.observe(batch, None, torch.empty(0))
            return
        rows = self.sampler._rows_of(batch.items)
        rows = None if rows is None else all_gather_rows(rows)
        self.pool.update(pairs[:, 0], pairs[:, 1], rows, step=batch.step)


def train_distributed(
    stream: Any, data: StreamData, model_cfg: ModelConfig, cfg: TrainConfig,
    frequency: StreamingFrequency | None = None, on_step: Any | None = None,
) -> TrainResult:
    """Train on this rank's share of ``stream`` in the torchrun process group.

    Args:
        stream: a ``ParquetStream`` built with this rank's ``rank`` and ``world``.
        data, model_cfg, cfg: as for :func:`clusterneg.train.streaming.train_stream`.
        frequency: online item frequencies over the global batch (batch_size = world x B).
        on_step: called as ``on_step(step, loss)`` after each step (logging, tests).
    """
    rank = dist.get_rank()
    cfg.validate()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)  # the same initial towers on every rank
    content = None if data.content is None else torch.as_tensor(data.content).float()
    model = TwoTower(model_cfg, data.n_users, data.n_items, content=content).to(cfg.device)
    ctx = stream_context(data, cfg)
    sampler = build_sampler(cfg.sampler, ctx, **cfg.sampler_options)  # common preload
    sampler.generator.manual_seed(cfg.seed + rank)  # then per-rank draws
    sync = GlobalPoolSync(sampler)
    ddp = DistributedDataParallel(_BatchLoss(model, sampler, ctx, cfg.logq_correction))
    opt = make_optimizer(model, cfg)
    result = TrainResult(model=model, sampler=sampler)
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        losses = _epoch(stream.epoch(epoch), model, sampler, sync, ddp, opt, ctx, cfg,
                        frequency, result, on_step)
        result.epochs.append({"epoch": epoch, "loss": float(np.mean(losses)) if losses
                              else 0.0})
        if cfg.max_steps is not None and result.steps >= cfg.max_steps:
            break
    result.train_seconds = result.seconds = time.perf_counter() - t0
    result.best_epoch = len(result.epochs) - 1
    return result


def _epoch(batches: Any, model: TwoTower, sampler: Any, sync: GlobalPoolSync,
           ddp: nn.Module, opt: torch.optim.Optimizer, ctx: SamplerContext, cfg: TrainConfig,
           frequency: StreamingFrequency | None, result: TrainResult,
           on_step: Any | None) -> list[float]:
    losses: list[float] = []
    device = torch.device(cfg.device)
    it = iter(batches)
    while cfg.max_steps is None or result.steps < cfg.max_steps:
        nxt = next(it, None)
        alive = torch.tensor([0 if nxt is None or len(nxt[0]) < 2 else 1], device=device)
        dist.all_reduce(alive, op=dist.ReduceOp.MIN)  # stop together
        if not int(alive):
            break
        batch = Batch(torch.from_numpy(nxt[0]).to(device), torch.from_numpy(nxt[1]).to(device),
                      step=result.steps)
        pairs = sync.gather(batch)
        if frequency is not None:
            frequency.update(pairs[:, 0], batch.step)  # the global batch
            install_estimates(frequency, ctx, sampler, batch.items)
        model.train()
        blocks = sampler.negatives(batch, model)
        loss = ddp(batch, blocks)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync.observe(batch, pairs)
        losses.append(float(loss.detach()))
        result.steps += 1
        result.examples += len(batch)
        if on_step is not None:
            on_step(result.steps, losses[-1])
    return losses


def main(argv: list[str] | None = None) -> None:
    """torchrun entry point: train on a synth directory, write per-rank summaries."""
    from safetensors.torch import save_file

    from clusterneg.data.stream import ParquetStream
    from clusterneg.train.checkpoint import save_checkpoint

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a clusterneg data synth directory")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sampler", default="cluster-goobs")
    ap.add_argument("--negatives", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    rank, world = init(args.device)
    meta = json.loads((args.data / "synth.json").read_text())
    import pyarrow.parquet as pq

    cluster = pq.read_table(args.data / "latent_items.parquet")["cluster"].to_numpy()
    data = StreamData(meta["n_users"], meta["n_items"], cluster, meta["n_clusters"])
    opts = {} if args.sampler == "in-batch" else {"n_negatives": args.negatives}
    cfg = TrainConfig(sampler=args.sampler, sampler_options=opts, epochs=args.epochs,
                      max_steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                      threads=args.threads, device=args.device)
    stream = ParquetStream(args.data, args.batch_size, buffer_rows=max(args.batch_size,
                           200_000), seed=args.seed, rank=rank, world=world)
    est = StreamingFrequency(meta["n_items"], args.batch_size * world, n_items=meta["n_items"])
    losses: list[float] = []
    res = train_distributed(stream, data, ModelConfig(dim=args.dim, history_len=0,
                            content=False), cfg, frequency=est,
                            on_step=lambda s, loss: losses.append(loss))
    args.out.mkdir(parents=True, exist_ok=True)
    pool = getattr(res.sampler, "pool", None)
    if pool is not None:
        save_file({"item_ids": pool.item_ids.cpu().contiguous(),
                   "written": pool.written.cpu().contiguous()},
                  str(args.out / f"pool-rank{rank}.safetensors"))
    weights = sum(float(p.detach().double().sum()) for p in res.model.parameters())
    summary = {"rank": rank, "world": world, "steps": res.steps, "examples": res.examples,
               "seconds": res.train_seconds, "examples_per_s": res.examples_per_s,
               "losses": losses, "weights_checksum": weights}
    if rank == 0:
        save_checkpoint(args.out / "model", res.model.state_dict(),
                        {"distributed": {k: str(v) for k, v in vars(args).items()},
                         "sampler": res.sampler.config_dict()}, summary)
    (args.out / f"rank{rank}.json").write_text(json.dumps(summary) + "\n")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
