"""What resuming a streamed run costs: checkpoint write, load, and the stream fast-forward.

A resumed ``train-stream`` run replays its epoch up to the cursor without training on it
(the stream's order is a function of seed, epoch and rank, so re-reading is how the shuffle
buffer gets back to where it was). This measures, in one process on one thread: the training
rate, the time to write and to load one checkpoint (and its size), and the rate of the
fast-forward, so the cost of a resume at a given cursor is arithmetic.

Run from the repository root:

    clusterneg data synth --items 100000 --interactions 1000000 --users 20000 \
        --out /tmp/scale_data/synth-100k
    PYTHONPATH=src OMP_NUM_THREADS=1 nice python bench/scale_resume.py \
        /tmp/scale_data/synth-100k

Writes bench/scale_resume.json and bench/scale_resume.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from itertools import islice
from pathlib import Path

from clusterneg.outputs import atomic_write_text

HERE = Path(__file__).resolve().parent


def measure(directory: Path, batch: int, dim: int, steps: int) -> dict:
    from clusterneg.model import ModelConfig
    from clusterneg.train.config import TrainConfig
    from clusterneg.train.state import Checkpointing, load_state, save_state, step_dirs
    from clusterneg.train.stream_run import StreamSource, open_stream
    from clusterneg.train.streaming import build_stream_run, restore_stream, train_stream

    src = StreamSource(str(directory))
    cfg = TrainConfig(sampler="cluster-goobs", sampler_options={"n_negatives": 16},
                      epochs=1, max_steps=steps, batch_size=batch, threads=1, seed=0)
    model_cfg = ModelConfig(dim=dim, history_len=0, content=False)
    state = Path(tempfile.mkdtemp()) / "state"
    ckpt = Checkpointing(state, every=steps)
    stream, data, freq = open_stream(src, cfg)
    t0 = time.perf_counter()
    res = train_stream(stream, data, model_cfg, cfg, frequency=freq, checkpoint=ckpt)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ckpt.save(10**6, {})  # an empty payload: the fixed cost of a checkpoint directory
    empty_s = time.perf_counter() - t0
    path = step_dirs(state)[0][1]  # the training checkpoint (step `steps`)
    size = sum(f.stat().st_size for f in path.iterdir())
    t0 = time.perf_counter()
    payload = load_state(path)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    save_state(Path(tempfile.mkdtemp()), steps, payload)
    save_s = time.perf_counter() - t0
    _, _, freq2 = open_stream(src, cfg)
    model, ctx, sampler, opt = build_stream_run(data, model_cfg, cfg, freq2)
    t0 = time.perf_counter()
    restore_stream(payload, model, opt, sampler, ctx, freq2, type(res)(model, sampler))
    restore_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    skipped = sum(1 for _ in islice(stream.epoch(0), steps))
    skip_s = time.perf_counter() - t0
    return {"data": directory.name, "rows": stream.n_rows, "items": data.n_items,
            "users": data.n_users, "batch": batch, "dim": dim, "steps": res.steps,
            "train_examples_per_s": round(res.examples / train_s),
            "checkpoint_mb": round(size / 1e6, 1), "checkpoint_write_s": round(save_s, 3),
            "empty_checkpoint_write_s": round(empty_s, 3),
            "checkpoint_load_s": round(load_s, 3), "restore_s": round(restore_s, 3),
            "fast_forward_batches": skipped,
            "fast_forward_rows_per_s": round(skipped * batch / skip_s),
            "fast_forward_over_train": round(skipped * batch / skip_s
                                             / (res.examples / train_s), 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    row = measure(args.data, args.batch, args.dim, args.steps)
    print(row, flush=True)
    command = ("PYTHONPATH=src OMP_NUM_THREADS=1 nice python bench/scale_resume.py "
               f"{args.data} --batch {args.batch} --dim {args.dim} --steps {args.steps}")
    atomic_write_text(HERE / "scale_resume.json", json.dumps({"command": command, **row},
                                                       indent=2) + "\n")
    r = row
    lines = ["# Resuming a streamed run: what it costs", "", f"`{command}`", "",
             f"{r['rows']:,} rows, {r['items']:,} items, {r['users']:,} users; cluster-goobs, "
             f"16 negatives, batch {r['batch']}, dimension {r['dim']}, one thread.", "",
             "| quantity | value |", "|---|---:|",
             f"| training rate (examples/s) | {r['train_examples_per_s']:,} |",
             f"| checkpoint size (MB) | {r['checkpoint_mb']} |",
             f"| checkpoint write (s) | {r['checkpoint_write_s']} |",
             f"| checkpoint directory, empty payload (s) | {r['empty_checkpoint_write_s']} |",
             f"| checkpoint load (s) | {r['checkpoint_load_s']} |",
             f"| restore into fresh objects (s) | {r['restore_s']} |",
             f"| fast-forward (rows/s) | {r['fast_forward_rows_per_s']:,} |",
             f"| fast-forward / training rate | {r['fast_forward_over_train']}x |", ""]
    atomic_write_text(HERE / "scale_resume.md", "\n".join(lines))


if __name__ == "__main__":
    main()
