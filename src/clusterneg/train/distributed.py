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
import sys
import time
from itertools import islice
from pathlib import Path
from typing import Any, NoReturn

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from clusterneg.allocator import keep_freed_memory
from clusterneg.errors import ClusternegError, ConfigError
from clusterneg.model import ModelConfig, TwoTower
from clusterneg.samplers.protocol import Batch, NegativeBlock, SamplerContext
from clusterneg.train.config import OPTIMIZERS, TrainConfig
from clusterneg.train.frequency import StreamingFrequency
from clusterneg.train.state import Checkpointing, LoopState, state_dir_for
from clusterneg.train.streaming import (
    StreamData,
    build_stream_run,
    install_estimates,
    restore_stream,
    stream_payload,
)
from clusterneg.train.trainer import TrainResult, batch_loss

#: how the pool rows of the other ranks' items reach a rank (see GlobalPoolSync)
POOL_ROWS = ("gather", "local")


def init(device: str = "cpu") -> tuple[int, int]:
    """Join the torchrun process group (nccl for CUDA, gloo otherwise): (rank, world)."""
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    if device.startswith("cuda"):
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return dist.get_rank(), dist.get_world_size()


def all_gather_rows(x: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """Concatenate every rank's ``x`` [n_rank, ...] in rank order (n may differ by rank).

    Args:
        size: every rank's row count when all ranks know it (full batches): one all-gather,
            without first exchanging the counts (no read back to the host). None: the
            counts are exchanged first, for a last, short batch.
    """
    if size is not None:
        if x.shape[0] != size:
            raise ValueError(f"all_gather_rows: {x.shape[0]} rows on this rank, promised {size}")
        out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(out, x.contiguous())
        return torch.cat(out)
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
        rows: how a pool that stores rows gets the rows of the other ranks' items:
            ``"gather"`` all-gathers them with the ids (``W x B`` rows on the network a
            step); ``"local"`` gathers the ids only and makes the rows on every rank from
            the same inputs: the replicated item features (``store_rows``), or, with
            ``cached_vectors``, one no-grad item-tower pass over the global batch under the
            weights DDP keeps identical (network: ids only; compute: ``W x B`` tower rows).
    """

    def __init__(self, sampler: Any, rows: str = "gather") -> None:
        if rows not in POOL_ROWS:
            raise ConfigError(f"pool rows must be one of {', '.join(POOL_ROWS)}, got {rows!r}")
        self.sampler, self.rows = sampler, rows
        self.pool = getattr(sampler, "pool", None)

    def gather(self, batch: Batch, size: int | None = None) -> torch.Tensor:
        """int64 [sum of batch sizes, 2]: every rank's (item id, cluster), in rank order.
        ``size``: every rank's batch size when all are known to be full (see
        :func:`all_gather_rows`)."""
        items = batch.items
        clusters = (self.sampler._clusters_of(items) if self.pool is not None
                    else torch.zeros_like(items))
        return all_gather_rows(torch.stack([items, clusters], dim=1), size)

    def observe(self, batch: Batch, pairs: torch.Tensor, size: int | None = None,
                model: Any = None) -> None:
        """Write the gathered batch into the pool (Algorithm 1 over the global batch). With
        ``cached_vectors`` the rows are the batch's item vectors under the updated ``model``:
        one no-grad item-tower pass over the local batch, gathered like the ids, or over the
        global batch on every rank (``rows="local"``)."""
        if self.pool is None:
            self.sampler.observe(batch, None, torch.empty(0))
            return
        items = pairs[:, 0] if self.rows == "local" else batch.items
        vecs = None
        if getattr(self.sampler, "cached_vectors", False):
            with torch.no_grad():
                vecs = model.item_vectors(items)
        rows = self.sampler.pool_rows(items, vecs)
        if rows is not None and self.rows == "gather":
            rows = all_gather_rows(rows, size)
        self.pool.update(pairs[:, 0], pairs[:, 1], rows, step=batch.step)
        self.sampler.after_write(model, batch.step)


def check_distributed(cfg: TrainConfig) -> None:
    """ConfigError for settings that train in one process but not under DDP: lazy Adam's
    sparse table gradients are all-reduced as rows by gloo; nccl has no sparse all-reduce.

    Example:
        >>> check_distributed(TrainConfig(optimizer="lazy-adam", device="cuda"))
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        clusterneg.errors.ConfigError: --optimizer lazy-adam under torchrun needs --device cpu...
    """
    if cfg.optimizer == "lazy-adam" and torch.device(cfg.device).type != "cpu":
        raise ConfigError("--optimizer lazy-adam under torchrun needs --device cpu (gloo "
                          "all-reduces sparse gradients; nccl does not)")


def train_distributed(
    stream: Any, data: StreamData, model_cfg: ModelConfig, cfg: TrainConfig,
    frequency: StreamingFrequency | None = None, on_step: Any | None = None,
    checkpoint: Checkpointing | None = None, pool_rows: str = "gather",
) -> TrainResult:
    """Train on this rank's share of ``stream`` in the torchrun process group.

    Resumable: each rank writes its own checkpoints (``checkpoint`` must point at a
    per-rank directory, see :func:`rank_checkpointing`), since the sampler's generator, the
    installed frequency estimates and the RNGs differ by rank; a resumed run continues from
    the newest step that every rank has (:func:`common_step`). The cursor is (epoch, batches
    taken), the same on every rank (they step together).

    Args:
        stream: a ``ParquetStream`` built with this rank's ``rank`` and ``world``.
        data, model_cfg, cfg: as for :func:`clusterneg.train.streaming.train_stream`.
        frequency: online item frequencies over the global batch (batch_size = world x B).
        on_step: called as ``on_step(step, loss)`` after each step, ``loss`` a detached
            device scalar (reading it is the caller's host sync, not the loop's).
        checkpoint: this rank's checkpointing, or None.
        pool_rows: ``"gather"`` or ``"local"``, see :class:`GlobalPoolSync`.
    """
    check_distributed(cfg)
    rank = dist.get_rank()
    model, ctx, sampler, opt = build_stream_run(data, model_cfg, cfg, frequency)
    sampler.generator.manual_seed(cfg.seed + rank)  # after a common preload, per-rank draws
    sync = GlobalPoolSync(sampler, pool_rows)
    ddp = DistributedDataParallel(_BatchLoss(model, sampler, ctx, cfg.logq_correction))
    result = TrainResult(model=model, sampler=sampler)
    st = LoopState()
    if checkpoint is not None and checkpoint.resume:
        payload = checkpoint.load(common_step(checkpoint, cfg.device))
        st = restore_stream(payload, model, opt, sampler, ctx, frequency, result).to(cfg.device)
    t0 = time.perf_counter()
    while st.epoch < cfg.epochs:
        n_steps = _shortest(stream.train_batches(), cfg.device)  # ranks stop together
        for users, items in islice(stream.epoch(st.epoch), st.position, n_steps):
            if cfg.max_steps is not None and result.steps >= cfg.max_steps:
                break
            st.position += 1
            batch = Batch(torch.from_numpy(users).to(cfg.device),
                          torch.from_numpy(items).to(cfg.device), step=result.steps)
            # every rank's batch is full except, possibly, at the epoch's last common step:
            # there the sizes are exchanged; before it the all-gathers skip that exchange
            full = stream.batch_size if st.position < n_steps else None
            loss = _step(batch, model, sampler, sync, ddp, opt, ctx, frequency, full)
            st.add_loss(loss)  # on the device: no host sync per step
            result.steps += 1
            result.examples += len(batch)
            if on_step is not None:
                on_step(result.steps, loss)
            if checkpoint is not None and checkpoint.due(result.steps):
                checkpoint.save(result.steps, stream_payload(model, opt, sampler, ctx,
                                                             frequency, result, st))
        result.epochs.append({"epoch": st.epoch, "loss": st.mean_loss()})
        st.next_epoch()
        if cfg.max_steps is not None and result.steps >= cfg.max_steps:
            break
    result.train_seconds += time.perf_counter() - t0
    result.seconds = result.train_seconds
    result.best_epoch = len(result.epochs) - 1
    return result


def _step(batch: Batch, model: TwoTower, sampler: Any, sync: GlobalPoolSync, ddp: nn.Module,
          opt: torch.optim.Optimizer, ctx: SamplerContext,
          frequency: StreamingFrequency | None, full: int | None = None) -> torch.Tensor:
    """One DDP step; the global batch updates the frequencies before and the pool after.
    ``full``: every rank's batch size when all batches are known to be full."""
    pairs = sync.gather(batch, full)
    if frequency is not None:
        frequency.update(pairs[:, 0], batch.step)  # the global batch
        install_estimates(frequency, ctx, sampler, batch.items)
    model.train()
    blocks = sampler.negatives(batch, model)
    loss = ddp(batch, blocks)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sync.observe(batch, pairs, full, model)
    return loss.detach()


def _shortest(n: int, device: str) -> int:
    """The smallest ``n`` over all ranks."""
    t = torch.tensor([n], device=torch.device(device))
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return int(t)


def rank_checkpointing(state_dir: Path, rank: int, every: int, resume: bool,
                       config: dict[str, Any]) -> Checkpointing:
    """This rank's checkpoints, in ``state_dir/rank-<rank>``."""
    return Checkpointing(Path(state_dir) / f"rank-{rank}", every, resume, config)


def common_step(checkpoint: Checkpointing, device: str) -> int:
    """The newest checkpoint step that every rank has written (a kill between two ranks'
    writes leaves one rank a checkpoint ahead; each keeps its previous one). DataError when
    the ranks share none."""
    from clusterneg.errors import DataError
    from clusterneg.train.state import KEEP

    mine = checkpoint.steps()[-KEEP:]
    padded = torch.full((KEEP,), -1, dtype=torch.int64, device=torch.device(device))
    padded[: len(mine)] = torch.tensor(mine, dtype=torch.int64)
    every = [torch.empty_like(padded) for _ in range(dist.get_world_size())]
    dist.all_gather(every, padded)
    shared = set.intersection(*({int(s) for s in t.tolist() if s >= 0} for t in every))
    if not shared:
        raise DataError(checkpoint.state_dir, "no checkpoint step that every rank has "
                        "written (expected step-* directories from --checkpoint-every)")
    return max(shared)


def main(argv: list[str] | None = None) -> None:
    """torchrun entry point: train on a synth directory (or shards with ``--clusters``), write
    per-rank summaries, the pools, and rank 0's model; resumable with ``--checkpoint-every``
    and ``--resume``."""
    from clusterneg.commands._common import parse_options
    from clusterneg.train.stream_run import StreamSource, open_stream

    args = _parser().parse_args(argv)
    keep_freed_memory()
    opts = {} if args.sampler == "in-batch" else {"n_negatives": args.negatives}
    try:  # the options, checked before the process group starts: one line and exit code 2
        opts.update(parse_options(args.option))
        cfg = TrainConfig(sampler=args.sampler, sampler_options=opts, epochs=args.epochs,
                          max_steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                          threads=args.threads, device=args.device,
                          optimizer=args.optimizer).validate()
        check_distributed(cfg)
    except ClusternegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    rank, world = init(args.device)
    src = StreamSource(str(args.data.resolve()), None if args.clusters is None
                       else str(args.clusters.resolve()), buffer_rows=max(args.batch_size,
                       200_000))
    stream, data, est = open_stream(src, cfg, rank=rank, world=world)
    ckpt = None
    if args.checkpoint_every or args.resume:
        run = {k: str(v) for k, v in vars(args).items()
               if k not in ("out", "resume", "checkpoint_every", "state_dir")}
        ckpt = rank_checkpointing(state_dir_for(args.out, args.state_dir),
                                  rank, args.checkpoint_every, args.resume,
                                  {"distributed": run, "world": {"size": world}})
    losses: list[torch.Tensor] = []
    res = train_distributed(stream, data, ModelConfig(dim=args.dim, history_len=0,
                            content=False), cfg, frequency=est,
                            on_step=lambda s, loss: losses.append(loss), checkpoint=ckpt,
                            pool_rows=args.pool_rows)
    _write_rank_outputs(args, res, rank, world, [float(x) for x in losses])
    dist.barrier()
    dist.destroy_process_group()


class _OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad command line as the ``clusterneg`` command does: one line
    on stderr, exit code 2, no usage block."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    ap = _OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a clusterneg data synth directory")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--clusters", type=Path, default=None,
                    help="item_id, cluster table (default: DATA/latent_items.parquet)")
    ap.add_argument("--sampler", default="cluster-goobs")
    ap.add_argument("--negatives", type=int, default=16)
    ap.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                    help="sampler option, e.g. cached_vectors=true (repeatable)")
    ap.add_argument("--pool-rows", choices=POOL_ROWS, default="gather",
                    help="gather: all-gather the pool rows with the ids; local: gather ids "
                         "only and make the rows on every rank (cached vectors: a no-grad "
                         "item-tower pass over the global batch)")
    ap.add_argument("--optimizer", choices=OPTIMIZERS, default="adam",
                    help="lazy-adam: sparse table gradients, all-reduced as rows (gloo), "
                         "Adam on the looked-up rows only")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--checkpoint-every", type=int, default=0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--state-dir", type=Path, default=None,
                    help="checkpoints (default: OUT.state; one rank-N folder per rank)")
    return ap


def _write_rank_outputs(args: argparse.Namespace, res: TrainResult, rank: int, world: int,
                        losses: list[float]) -> None:
    """``rank<r>.json`` (steps, speed, the losses of the steps this process ran, each
    epoch's mean loss, a weight checksum), ``pool-rank<r>.safetensors``, rank 0's model."""
    from safetensors.torch import save_file

    from clusterneg.train.checkpoint import save_checkpoint

    args.out.mkdir(parents=True, exist_ok=True)
    pool = getattr(res.sampler, "pool", None)
    if pool is not None:
        tensors = {"item_ids": pool.item_ids, "written": pool.written}
        if pool.stores_rows:
            tensors["rows"] = pool.slot_rows()
        save_file({k: v.cpu().contiguous() for k, v in tensors.items()},
                  str(args.out / f"pool-rank{rank}.safetensors"))
    weights = sum(float(p.detach().double().sum()) for p in res.model.parameters())
    summary = {"rank": rank, "world": world, "steps": res.steps, "examples": res.examples,
               "seconds": res.train_seconds, "examples_per_s": res.examples_per_s,
               "losses": losses, "epoch_losses": [e["loss"] for e in res.epochs],
               "weights_checksum": weights}
    if rank == 0:
        save_checkpoint(args.out / "model", res.model.state_dict(),
                        {"distributed": {k: str(v) for k, v in vars(args).items()},
                         "sampler": res.sampler.config_dict()}, summary,
                        overwrite=args.resume)  # a run killed after writing it
    (args.out / f"rank{rank}.json").write_text(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main()
