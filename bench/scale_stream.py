"""Peak memory of streamed training against the data size (issue #12, "memory flat").

Run from the repository root (the data comes from ``clusterneg data synth``):

    clusterneg data synth --items 1000000 --interactions 1000000 --users 100000 \
        --out /tmp/scale_data/synth-1m
    clusterneg data synth --items 1000000 --interactions 10000000 --users 100000 \
        --out /tmp/scale_data/synth-10m
    PYTHONPATH=src OMP_NUM_THREADS=1 nice python bench/scale_stream.py \
        /tmp/scale_data/synth-1m /tmp/scale_data/synth-10m

Each dataset trains in its own fresh process, the processes running side by side (so each
peak RSS, ``ru_maxrss``, is its own process's, and examples/s are contended): one pass of
cluster-goobs (16 pool negatives, 1:15; without in-batch negatives unless ``--in-batch``,
since their [B, B] softmax made a 10M pass too slow for the shared machine) over the shards,
batch 4096, id-only towers of dimension 8 (small, so that a pass over 10M rows fits the time
of a shared 2-core machine: the dense Adam update over the 1.1M id embeddings dominates each
step), the latent synthetic
clusters, item frequencies estimated online (Yi et al. 2019). Both datasets have the same
catalog and users, so the model, the optimizer and the pool are the same size and only the
data grows. Writes bench/scale_stream.json and bench/scale_stream.md.

``--keep-freed-memory`` runs each child with :func:`clusterneg.allocator.keep_freed_memory`
(as the ``clusterneg`` command does: freed heap memory is kept, never trimmed, so the
question is whether the heap grows with the data) and writes
bench/scale_stream_keep.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from clusterneg.outputs import atomic_write_text

HERE = Path(__file__).resolve().parent


def one(directory: Path, batch: int, dim: int, epochs: int, in_batch: bool,
        keep: bool = False) -> dict:
    """Train one pass over ``directory`` in this process; report time and peak RSS."""
    import pyarrow.parquet as pq

    from clusterneg.allocator import keep_freed_memory

    kept = keep_freed_memory(children=False) if keep else False

    from clusterneg.data.stream import ParquetStream
    from clusterneg.model import ModelConfig
    from clusterneg.train.config import TrainConfig
    from clusterneg.train.frequency import StreamingFrequency
    from clusterneg.train.streaming import StreamData, train_stream

    meta = json.loads((directory / "synth.json").read_text())
    cluster = pq.read_table(directory / "latent_items.parquet")["cluster"].to_numpy()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    data = StreamData(n_users=meta["n_users"], n_items=meta["n_items"], item_cluster=cluster,
                      n_clusters=meta["n_clusters"])
    cfg = TrainConfig(sampler="cluster-goobs", sampler_options={"n_negatives": 16,
                                                                "in_batch": in_batch},
                      epochs=epochs, batch_size=batch, threads=1, seed=0)
    est = StreamingFrequency(meta["n_items"], batch_size=batch, n_items=meta["n_items"])
    stream = ParquetStream(directory, batch, buffer_rows=1_000_000)
    t0 = time.perf_counter()
    res = train_stream(stream, data, ModelConfig(dim=dim, history_len=0, content=False),
                       cfg, frequency=est)
    seconds = time.perf_counter() - t0
    return {"data": directory.name, "in_batch": in_batch, "batch": batch, "dim": dim,
            "keep_freed_memory": kept,
            "interactions": meta["n_interactions"],
            "items": meta["n_items"], "users": meta["n_users"], "clusters": meta["n_clusters"],
            "examples": res.examples, "steps": res.steps, "seconds": round(seconds, 1),
            "examples_per_s": round(res.examples / seconds, 1),
            "loss_first_last": [res.epochs[0]["loss"], res.epochs[-1]["loss"]],
            "peak_rss_mb_before_training": round(rss_before / 1024, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="*", type=Path)
    ap.add_argument("--one", type=Path, help="(internal) train on one directory, print JSON")
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--dim", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--in-batch", action="store_true",
                    help="also in-batch negatives (a [B, B] softmax per step: far slower)")
    ap.add_argument("--keep-freed-memory", action="store_true",
                    help="each child keeps freed memory (clusterneg.allocator), as the CLI does")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.batch, args.dim, args.epochs, args.in_batch,
                             args.keep_freed_memory)))
        return
    procs = [subprocess.Popen([sys.executable, __file__, "--one", str(d), "--batch",
                               str(args.batch), "--dim", str(args.dim), "--epochs",
                               str(args.epochs), *(["--in-batch"] if args.in_batch else []),
                               *(["--keep-freed-memory"] if args.keep_freed_memory else [])],
                              stdout=subprocess.PIPE, text=True)
             for d in args.dirs]  # in parallel: each process's peak RSS is its own
    rows = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"a run failed with exit code {p.returncode}")
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    ratio = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    result = {"command": "PYTHONPATH=src OMP_NUM_THREADS=1 nice python bench/scale_stream.py "
                         + ("--in-batch " if args.in_batch else "")
                         + ("--keep-freed-memory " if args.keep_freed_memory else "")
                         + " ".join(str(d) for d in args.dirs),
              "runs": rows, "peak_rss_ratio_last_over_first": round(ratio, 3)}
    name = "scale_stream_keep" if args.keep_freed_memory else "scale_stream"
    atomic_write_text(HERE / f"{name}.json", json.dumps(result, indent=2) + "\n")
    lines = ["# Streamed training: peak memory against data size", "",
             f"`{result['command']}`", "",
             "| data | interactions | items | users | steps | examples/s | peak RSS (MB) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['data']} | {r['interactions']:,} | {r['items']:,} | {r['users']:,} | "
              f"{r['steps']:,} | {r['examples_per_s']:,.0f} | {r['peak_rss_mb']:,.0f} |"
              for r in rows]
    lines += ["", f"Peak RSS ratio, last over first: **{ratio:.3f}** (target <= 1.2).", ""]
    atomic_write_text(HERE / f"{name}.md", "\n".join(lines))


if __name__ == "__main__":
    main()
