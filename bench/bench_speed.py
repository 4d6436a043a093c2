"""Training examples/s of in-batch, goobs and cluster-goobs in ONE run, on amazon-3cat.

Each sampler gets its own model and optimiser; steps go through the trainer's own
``train_step`` (so the numbers measure the code ``clusterneg train`` runs), interleaved in
rotating order, same batches for every sampler, one torch thread. The data are the real
amazon-3cat training interactions (leave-last-out, split seed 0: 77,373 users, 42,381 items);
the item tower's content rows are seeded random 384-d rows, the shape of the MiniLM
embeddings (the values do not change the cost); clusters are 300 seeded random labels (the
cluster sizes barely change the cost of a draw). Model as in the amazon-3cat comparison: 64-d,
user tower = mean of the last 50 items (no user id), content + item id in the item tower,
batch 256, 16 extra negatives per example for goobs and cluster-goobs (1 same-cluster + 15
random).

``--towers id`` runs the paper protocol's towers instead (``--protocol paper`` on Amazon):
ID-only item tower (no content row), 32 extra negatives per example, cluster:random 1:31.

``--profile`` also runs a fixed number of steps of each sampler under ``torch.profiler`` and
``cProfile`` and writes ``bench/results/profile_<sampler>.json`` (top ops and Python
functions by self time).

Run (2-core machine, quiet as possible)::

    PYTHONPATH=src python bench/bench_speed.py --tag after --rounds 6 --steps 30 --profile
    PYTHONPATH=src python bench/bench_speed.py --tag after_id --towers id --profile

Writes ``bench/results/speed_<tag>.json`` and ``bench/results/speed_<tag>.md``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import platform
import pstats
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clusterneg.model import ModelConfig
from clusterneg.outputs import atomic_write_text
from clusterneg.samplers import build_sampler
from clusterneg.samplers.protocol import Batch
from clusterneg.train.config import TrainConfig
from clusterneg.train.trainer import TrainData, build_model, sampler_context, train_step

try:
    from clusterneg.train.optimizer import make_optimizer, reuse_embedding_grads
except ImportError:  # the code before the optimizer module (session 10)
    try:
        from clusterneg.train.trainer import make_optimizer
    except ImportError:  # the code before issue 12's changes: plain Adam
        def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
            return torch.optim.Adam(model.parameters(), lr=cfg.lr,
                                    weight_decay=cfg.weight_decay)
    try:
        from clusterneg.train.trainer import reuse_embedding_grads
    except ImportError:  # the code before issue 12's speed work (session 3)
        reuse_embedding_grads = None

OUT = Path(__file__).resolve().parent / "results"
DATA = Path(os.environ.get("CLUSTERNEG_A3", "/work/shared/data/amazon-3cat"))
#: tower configurations: "content" (clusterneg's default: id embedding + Linear(384, 64) of
#: the content row, 16 extra negatives, cluster:random 1:15) and "id" (the paper protocol's
#: ID-only towers, ``--protocol paper`` on Amazon: 32 extra negatives, cluster:random 1:31).
TOWERS: dict[str, dict[str, Any]] = {
    "content": {"content": True, "n_negatives": 16},
    "id": {"content": False, "n_negatives": 32},
}
N_CLUSTERS, BATCH = 300, 256
SLOT_LAYOUT = "_slot_layout"  # a bench-only flag: keep the pool's rows by slot
NO_WRITE = "_no_write"  # a bench-only flag: skip the pool writes (observe), a cost bound


def variants(towers: str, negatives: int | None = None,
             ratio: str | None = None) -> dict[str, tuple[str, dict[str, Any]]]:
    """label -> (sampler, options); "shared" draws the random negatives once per batch (mixed
    negative sampling, Yang et al. 2020): each example still has the same number of extra
    negatives. ``negatives`` overrides the towers' count (cluster:random 1:(negatives - 1)
    unless ``ratio`` sets it)."""
    k = TOWERS[towers]["n_negatives"] if negatives is None else negatives
    ratio = ratio or f"1:{k - 1}"
    return {
        "in-batch": ("in-batch", {}),
        "goobs": ("goobs", {"n_negatives": k}),
        "cluster-goobs": ("cluster-goobs", {"n_negatives": k, "ratio": ratio}),
        "goobs shared": ("goobs", {"n_negatives": k, "shared": True}),
        "cluster-goobs shared": ("cluster-goobs", {"n_negatives": k, "ratio": ratio,
                                                   "shared": True}),
        # the pool holds item vectors (cached_vectors): no item-tower pass for negatives
        "goobs cached": ("goobs", {"n_negatives": k, "cached_vectors": True}),
        "cluster-goobs cached": ("cluster-goobs", {"n_negatives": k, "ratio": ratio,
                                                   "cached_vectors": True}),
        # both: cached vectors, and the random ones drawn once per batch ([K] vectors, scored
        # by one [B, d] x [d, K] product instead of a [B, K, d] gather)
        "goobs cached shared": ("goobs", {"n_negatives": k, "cached_vectors": True,
                                          "shared": True}),
        "cluster-goobs cached shared": ("cluster-goobs", {"n_negatives": k, "ratio": ratio,
                                                          "cached_vectors": True,
                                                          "shared": True}),
        # the same, with the pool's rows kept by slot (C x S) instead of in rank order: the
        # layout before the compact pool (issue 12), for a before/after in one run
        "goobs cached by slot": ("goobs", {"n_negatives": k, "cached_vectors": True,
                                           SLOT_LAYOUT: True}),
        "cluster-goobs cached by slot": ("cluster-goobs", {"n_negatives": k, "ratio": ratio,
                                                           "cached_vectors": True,
                                                           SLOT_LAYOUT: True}),
        # cached + shared with the per-step pool write (Algorithm 1) skipped: not a method
        # (the pool's rows would go stale between refreshes), the bound of what batching or
        # amortising the writes could save
        "cluster-goobs cached shared no-write": ("cluster-goobs", {
            "n_negatives": k, "ratio": ratio, "cached_vectors": True, "shared": True,
            NO_WRITE: True}),
        # the exact softmax over the whole catalog (the headroom reference): not in the
        # default list, one of its steps costs about 30 in-batch steps
        "full": ("full", {}),
        # the same with each user's training items out of its row's sum (a [B, N] mask
        # scattered per step into the fused loss; before session 17 the general block)
        "full masked": ("full", {"mask_user_items": True}),
    }


VARIANTS = [v for v in variants("content")
            if not v.startswith("full") and not v.endswith("no-write")]
LAZY = " lazy"  # a label suffix: the same sampler trained with --optimizer lazy-adam


def base_label(label: str) -> tuple[str, str]:
    """(variant label, optimizer) of a label such as ``"goobs cached shared lazy"``."""
    if label.endswith(LAZY):
        return label[: -len(LAZY)], "lazy-adam"
    return label, "adam"


def load_train(seed: int = 0) -> tuple[TrainData, str]:
    """amazon-3cat training split, random content rows and 300 random clusters."""
    from clusterneg.data.load import load_dataset
    from clusterneg.data.splits import make_split

    ds = load_dataset(str(DATA))
    split = make_split(ds, method="leave-last-out", seed=seed)
    rng = np.random.default_rng(seed)
    content = rng.standard_normal((ds.n_items, 384)).astype(np.float32)
    content /= np.linalg.norm(content, axis=1, keepdims=True)
    source = "seeded random 384-d rows (the MiniLM shape; values do not change the cost)"
    cluster = rng.integers(0, N_CLUSTERS, ds.n_items).astype(np.int64)
    return TrainData(ds.n_users, ds.n_items, split.train, content, cluster, N_CLUSTERS), source


class Runner:
    """One sampler with its own model and optimiser, stepping the trainer's train_step."""

    def __init__(self, label: str, data: TrainData, threads: int, towers: str = "content",
                 negatives: int | None = None, ratio: str | None = None) -> None:
        base, optimizer = base_label(label)
        name, options = variants(towers, negatives, ratio)[base]
        # optimizer passed only when not the default: the code before session 10 (measured
        # for before/after runs) has no such field
        cfg = TrainConfig(sampler=name, batch_size=BATCH, seed=0, threads=threads,
                          **({"optimizer": optimizer} if optimizer != "adam" else {}))
        model_cfg = ModelConfig(dim=64, user_id=False, content=TOWERS[towers]["content"])
        self.model = build_model(data, model_cfg, seed=0)
        if reuse_embedding_grads is not None and optimizer == "adam":  # as train() on the CPU
            reuse_embedding_grads(self.model)
        self.ctx = sampler_context(data, cfg)
        slot_layout = bool(options.pop(SLOT_LAYOUT, False))
        no_write = bool(options.pop(NO_WRITE, False))
        self.sampler = build_sampler(name, self.ctx, **options)
        if no_write:
            self.sampler.observe = lambda *args, **kwargs: None
        if slot_layout:  # before the pool's first index build, which would make it compact
            self.sampler.pool._make_compact = lambda: None
        self.opt = make_optimizer(self.model, cfg)
        self.step_no = 0

    def step(self, batch: Batch) -> tuple[float, float]:
        """(CPU seconds, wall seconds) of one training step, loss read back. With one
        thread, the CPU time is what the step costs whatever else the machine runs."""
        batch.step = self.step_no
        c0, t0 = time.process_time(), time.perf_counter()
        out = train_step(self.model, self.sampler, batch, self.opt, self.ctx, True)
        float(out.loss.detach())
        self.step_no += 1
        return time.process_time() - c0, time.perf_counter() - t0


def batches(data: TrainData, n: int, seed: int) -> list[Batch]:
    gen = torch.Generator().manual_seed(seed)
    users, items = torch.from_numpy(data.train.user), torch.from_numpy(data.train.item)
    out = []
    for _ in range(n):
        idx = torch.randint(0, len(users), (BATCH,), generator=gen)
        out.append(Batch(users[idx], items[idx]))
    return out


def throughput(runners: dict[str, Runner], data: TrainData, rounds: int, steps: int) -> dict:
    """Median step time per sampler (CPU time, and wall time); samplers interleaved, in
    rotating order, on the same batches."""
    times: dict[str, list[float]] = {n: [] for n in runners}
    walls: dict[str, list[float]] = {n: [] for n in runners}
    per_round: list[dict[str, float]] = []  # CPU seconds of each sampler's steps per round
    warm = batches(data, 3, seed=99)
    for r in runners.values():
        for b in warm:
            r.step(Batch(b.users, b.items))
    for rep in range(rounds):
        todo = batches(data, steps, seed=rep)
        k = rep % len(runners)
        order = list(runners)[k:] + list(runners)[:k]
        per_round.append(dict.fromkeys(runners, 0.0))
        for name in order:
            for b in todo:
                cpu, wall = runners[name].step(Batch(b.users, b.items))
                times[name].append(cpu)
                walls[name].append(wall)
                per_round[-1][name] += cpu
    eps = {n: BATCH / statistics.median(v) for n, v in times.items()}
    # the same ratio round by round (each round's samplers ran back to back on the same
    # batches, so a change of the machine's speed between rounds cancels): its spread is the
    # measurement's own noise
    paired = {}
    for n in runners:
        base = _in_batch_of(n)
        if base in runners:
            r = [rd[base] / rd[n] for rd in per_round]
            paired[n] = {"median": statistics.median(r), "min": min(r), "max": max(r)}
    eps_wall = {n: BATCH / statistics.median(v) for n, v in walls.items()}
    return {"clock": "process CPU time (1 thread)", "examples_per_s_median": eps,
            "ratio_to_in_batch": {n: eps[n] / eps["in-batch"] for n in eps},
            # each sampler against in-batch under the same optimiser (lazy variants)
            "ratio_to_in_batch_same_optimizer": {n: eps[n] / eps.get(_in_batch_of(n), math.nan)
                                                 for n in eps},
            "ratio_same_optimizer_per_round": paired,
            "wall_examples_per_s_median": eps_wall,
            "wall_ratio_to_in_batch": {n: eps_wall[n] / eps_wall["in-batch"] for n in eps},
            "step_ms_median": {n: 1e3 * statistics.median(v) for n, v in times.items()},
            "step_ms_p90": {n: 1e3 * float(np.percentile(v, 90)) for n, v in times.items()},
            "rounds": rounds, "steps_per_round": steps}


def _in_batch_of(label: str) -> str:
    """The in-batch label trained with the same optimiser as ``label``."""
    return "in-batch" + (LAZY if base_label(label)[1] == "lazy-adam" else "")


def refresh_cost(runners: dict[str, Runner], tp: dict, repeats: int = 3) -> dict:
    """For the ``cached_vectors`` variants: CPU ms of one refresh of every pooled vector
    (median of ``repeats``), and the throughput ratio with that cost spread over its
    ``refresh_every`` steps (a refresh is rarer than the measured steps, so the step
    medians alone would leave it out)."""
    out = {}
    for name, r in runners.items():
        s = r.sampler
        if not getattr(s, "cached_vectors", False):
            continue
        times = []
        for _ in range(repeats):
            c0 = time.process_time()
            s.fill_vectors(r.model)
            times.append(time.process_time() - c0)
        ms = 1e3 * statistics.median(times)
        every = s.refresh_every
        step = tp["step_ms_median"][name] + (ms / every if every else 0.0)
        out[name] = {"refresh_ms": ms, "refresh_every": every, "filled_slots": s.pool.n_filled,
                     "amortized_step_ms": step,
                     "amortized_ratio_to_in_batch":
                         tp["step_ms_median"].get(_in_batch_of(name),
                                                  tp["step_ms_median"]["in-batch"]) / step}
    return out


def op_counts(runners: dict[str, Runner], data: TrainData, steps: int = 10) -> dict[str, float]:
    """Tensor operations (``aten::`` calls, nested ones included) per training step of each
    sampler, counted by torch.profiler over ``steps`` steps: on the CPU with small towers a
    step costs about its number of operations, whatever their size, so this count is the
    load-independent part of the speed measurement."""
    todo = batches(data, steps, seed=4321)
    out = {}
    for name, r in runners.items():
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for b in todo:
                r.step(Batch(b.users, b.items))
        out[name] = sum(e.count for e in prof.key_averages()
                        if e.key.startswith("aten::")) / steps
    return out


def profile(runners: dict[str, Runner], data: TrainData, steps: int, tag: str) -> dict:
    """torch.profiler op table and cProfile function table over ``steps`` steps each."""
    summary = {}
    todo = batches(data, steps, seed=1234)
    for name, r in runners.items():
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for b in todo:
                r.step(Batch(b.users, b.items))
        ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total_us = sum(e.self_cpu_time_total for e in ops)
        op_rows = [{"op": e.key, "calls": e.count, "self_ms": e.self_cpu_time_total / 1e3,
                    "self_pct": 100 * e.self_cpu_time_total / max(total_us, 1)}
                   for e in ops[:25]]
        prof_py = cProfile.Profile()
        prof_py.enable()
        for b in todo:
            r.step(Batch(b.users, b.items))
        prof_py.disable()
        st = pstats.Stats(prof_py)
        rows = sorted(st.stats.items(), key=lambda kv: kv[1][3], reverse=True)  # cumtime
        fn_rows = [{"function": f"{Path(f[0]).name}:{f[1]}({f[2]})", "calls": v[1],
                    "self_ms": 1e3 * v[2], "cum_ms": 1e3 * v[3]} for f, v in rows[:40]]
        res = {"sampler": name, "steps": steps, "batch": BATCH, "tag": tag,
               "profiler_self_ms_total": total_us / 1e3, "ops_by_self_time": op_rows,
               "python_by_cumulative_time": fn_rows}
        out = OUT / f"profile_{tag}_{name.replace(' ', '_')}.json"
        atomic_write_text(out, json.dumps(res, indent=2) + "\n")
        summary[name] = {"ms_per_step": total_us / 1e3 / steps,
                         "top_ops": [(o["op"], round(o["self_pct"], 1)) for o in op_rows[:8]]}
    return summary


SECTIONS = ("negatives", "user tower", "item tower", "loss", "backward", "optimiser",
            "pool write")


def sections(runners: dict[str, Runner], data: TrainData, rounds: int, steps: int
             ) -> dict[str, dict[str, float]]:
    """Mean CPU ms per step of each part of a training step (the trainer's ``train_step``,
    split where its calls are: the sampler's draws, the two towers, the loss, backward, the
    optimiser, the sampler's ``observe``), samplers interleaved on the same batches."""
    from clusterneg.loss import sampler_loss
    from clusterneg.train.trainer import candidate_vectors

    acc = {n: dict.fromkeys(SECTIONS, 0.0) for n in runners}
    for rep in range(rounds):
        todo = batches(data, steps, seed=500 + rep)
        k = rep % len(runners)
        for name in list(runners)[k:] + list(runners)[:k]:
            r, clock = runners[name], time.process_time
            for b in todo:
                batch = Batch(b.users, b.items)
                batch.step = r.step_no
                marks = [clock()]
                r.model.train()
                blocks = r.sampler.negatives(batch, r.model)
                marks.append(clock())
                user = r.model.user_vectors(batch.users, exclude_items=batch.items)
                marks.append(clock())
                pos, vecs = candidate_vectors(r.model, batch.items, blocks)
                marks.append(clock())
                out = sampler_loss(r.sampler, batch, blocks, user, pos, vecs,
                                   r.model.temperature, r.ctx.item_log_freq, diagnostics=False)
                marks.append(clock())
                r.opt.zero_grad(set_to_none=True)
                out.loss.backward()
                marks.append(clock())
                r.opt.step()
                marks.append(clock())
                r.sampler.observe(batch, r.model, pos.detach())
                marks.append(clock())
                float(out.loss.detach())
                r.step_no += 1
                for part, t0, t1 in zip(SECTIONS, marks[:-1], marks[1:], strict=True):
                    acc[name][part] += t1 - t0
    n = rounds * steps
    return {name: {part: 1e3 * t / n for part, t in parts.items()}
            for name, parts in acc.items()}


def main() -> None:
    global BATCH
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tag", default="after")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--towers", default="content", choices=list(TOWERS),
                    help="content: id + Linear(384, 64) of the content row, 16 negatives 1:15; "
                         "id: the paper protocol's ID-only towers, 32 negatives 1:31")
    ap.add_argument("--negatives", type=int, default=None,
                    help="extra negatives per example (default: 16 content, 32 id), "
                         "cluster:random 1:(N-1)")
    ap.add_argument("--ratio", default=None,
                    help="cluster:random ratio of the cluster-goobs variants (default "
                         "1:(N-1), one same-cluster negative per example)")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated labels among {list(VARIANTS)}")
    ap.add_argument("--batch-size", type=int, default=BATCH,
                    help="examples per step (the comparison's 256 by default); comparing two "
                         "sizes tells whether the samplers' extra work is per step or per "
                         "example")
    ap.add_argument("--sections", action="store_true",
                    help="also time each part of a step (draws, towers, loss, backward, "
                         "optimiser, pool write)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--profile-steps", type=int, default=40)
    ap.add_argument("--keep-freed-memory", action="store_true",
                    help="keep freed memory for reuse, as the command line does "
                         "(clusterneg.allocator); matters for the [B, N] tensors of full")
    args = ap.parse_args()
    if args.keep_freed_memory:
        from clusterneg.allocator import keep_freed_memory

        keep_freed_memory(children=False)
    BATCH = args.batch_size  # read by batches(), Runner and the records below
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    data, source = load_train()
    labels = [v for v in args.variants.split(",") if v]
    runners = {n: Runner(n, data, args.threads, args.towers, args.negatives, args.ratio)
               for n in labels}
    k = TOWERS[args.towers]["n_negatives"] if args.negatives is None else args.negatives
    res: dict[str, Any] = {
        "command": ("PYTHONPATH=src python bench/bench_speed.py --tag {tag} --rounds {rounds} "
                    "--steps {steps} --threads {threads} --towers {towers} --variants '{variants}'"
                    ).format(**vars(args))
        + ("" if args.negatives is None else f" --negatives {args.negatives}")
        + ("" if args.ratio is None else f" --ratio {args.ratio}")
        + ("" if args.batch_size == ap.get_default("batch_size")
           else f" --batch-size {args.batch_size}")
        + (" --sections" if args.sections else "")
        + (" --profile" if args.profile else "")
        + (" --keep-freed-memory" if args.keep_freed_memory else ""),
        "dataset": str(DATA), "n_items": data.n_items, "n_users": data.n_users,
        "n_train": int(len(data.train.user)), "content": source, "n_clusters": N_CLUSTERS,
        "batch": BATCH, "towers": args.towers,
        "extra_negatives_per_example": k, "ratio": args.ratio or f"1:{k - 1}",
        "variants": {v: variants(args.towers, k, args.ratio)[base_label(v)[0]] for v in labels},
        "threads": args.threads, "machine": platform.processor() or platform.machine(),
        "keep_freed_memory": args.keep_freed_memory,
        "load_avg_start": os.getloadavg(), "torch": torch.__version__,
    }
    res["throughput"] = throughput(runners, data, args.rounds, args.steps)
    res["refresh"] = refresh_cost(runners, res["throughput"])
    res["aten_calls_per_step"] = op_counts(runners, data)
    if args.sections:
        res["sections_cpu_ms"] = sections(runners, data, args.rounds, args.steps)
    if args.profile:
        res["profile"] = profile(runners, data, args.profile_steps, args.tag)
    res["load_avg_end"] = os.getloadavg()
    res["seconds"] = time.perf_counter() - t0
    OUT.mkdir(parents=True, exist_ok=True)
    atomic_write_text(OUT / f"speed_{args.tag}.json", json.dumps(res, indent=2) + "\n")
    atomic_write_text(OUT / f"speed_{args.tag}.md", table(res))
    print(table(res))


def table(res: dict) -> str:
    tp = res["throughput"]
    t = TOWERS[res.get("towers", "content")]
    towers = "content (id + Linear(384, 64))" if t["content"] else "ID-only"
    k = res["extra_negatives_per_example"]
    ratio = res.get("ratio") or f"1:{k - 1}"
    lines = [f"# Training speed on amazon-3cat ({res['content']})", "",
             f"`{res['command']}`", "",
             f"Batch {res['batch']}, {towers} towers, {k} extra negatives per "
             f"example (goobs; cluster-goobs cluster:random {ratio}; *shared*: the random ones "
             f"drawn once per batch), {res['n_clusters']} clusters, "
             f"{res['threads']} thread, {tp['rounds']} rounds x {tp['steps_per_round']} steps "
             f"per sampler, interleaved; load average {res['load_avg_start'][0]:.2f} at start, "
             f"{res['load_avg_end'][0]:.2f} at end.", "",
             "| sampler | examples/s (CPU time) | x in-batch | CPU ms/step median | p90 | "
             "examples/s (wall) | x in-batch (wall) |",
             "|---|---|---|---|---|---|---|"]
    same = tp.get("ratio_to_in_batch_same_optimizer", {})
    lazy = any(base_label(n)[1] == "lazy-adam" for n in tp["examples_per_s_median"])
    if lazy:
        lines[-2:] = ["*lazy*: trained with `--optimizer lazy-adam` (Adam on the looked-up "
                      "embedding rows only); *x in-batch (same optimiser)*: against in-batch "
                      "trained with the same optimiser.", "",
                      "| sampler | examples/s (CPU time) | x in-batch | x in-batch (same "
                      "optimiser) | CPU ms/step median | p90 | examples/s (wall) | "
                      "x in-batch (wall) |", "|---|---|---|---|---|---|---|---|"]
    for n, eps in tp["examples_per_s_median"].items():
        mid = f"{same.get(n, math.nan):.3f} | " if lazy else ""
        lines.append(f"| {n} | {eps:,.0f} | {tp['ratio_to_in_batch'][n]:.3f} | {mid}"
                     f"{tp['step_ms_median'][n]:.1f} | {tp['step_ms_p90'][n]:.1f} | "
                     f"{tp['wall_examples_per_s_median'][n]:,.0f} | "
                     f"{tp['wall_ratio_to_in_batch'][n]:.3f} |")
    paired = {n: p for n, p in tp.get("ratio_same_optimizer_per_round", {}).items()
              if _in_batch_of(n) != n}
    if paired:
        lines += ["", f"x in-batch (same optimiser), round by round: median [min, max] over "
                  f"the {tp['rounds']} rounds of the ratio of the rounds' CPU times: "
                  + "; ".join(f"{n} {p['median']:.3f} [{p['min']:.3f}, {p['max']:.3f}]"
                              for n, p in paired.items()) + "."]
    for n, r in res.get("refresh", {}).items():
        lines.append(f"\n*{n}*: one refresh of the {r['filled_slots']:,} pooled vectors "
                     f"costs {r['refresh_ms']:.0f} ms CPU; spread over its refresh_every="
                     f"{r['refresh_every']} steps the step is {r['amortized_step_ms']:.2f} ms, "
                     f"**{r['amortized_ratio_to_in_batch']:.3f}x in-batch**"
                     + (" (same optimiser)." if base_label(n)[1] == "lazy-adam" else "."))
    if "aten_calls_per_step" in res:
        lines += ["", "Tensor operations per step (`aten::` calls, nested included; "
                  "torch.profiler, 10 steps): " + ", ".join(
                      f"{n} {c:.0f}" for n, c in res["aten_calls_per_step"].items()) + "."]
    if "sections_cpu_ms" in res:
        sec = res["sections_cpu_ms"]
        lines += ["", "Where a step's CPU time goes (mean ms per step, `--sections`):", "",
                  "| sampler | " + " | ".join(SECTIONS) + " | sum |",
                  "|---|" + "---|" * (len(SECTIONS) + 1)]
        lines += [f"| {n} | " + " | ".join(f"{p[s]:.2f}" for s in SECTIONS)
                  + f" | {sum(p.values()):.2f} |" for n, p in sec.items()]
    if "profile" in res:
        lines += ["", "Profile (torch.profiler, self CPU time; top ops, % of the step):", ""]
        for n, p in res["profile"].items():
            ops = ", ".join(f"{o} {pct}%" for o, pct in p["top_ops"])
            lines.append(f"- **{n}** ({p['ms_per_step']:.1f} ms/step): {ops}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
