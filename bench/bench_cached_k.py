"""What cached pool vectors leave to pay: step time of goobs with ``cached_vectors`` at several
numbers of negatives per example, against in-batch, interleaved in one run (docs/cost.md,
third pass). The fixed part is the step at K = 1 minus in-batch's; the slope is per negative.

    PYTHONPATH=src python bench/bench_cached_k.py --ks 1,16,64 --rounds 4 --steps 15 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import time

import bench_speed as bs
import torch

from clusterneg.outputs import atomic_write_text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ks", default="1,16,64")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ks = [int(k) for k in args.ks.split(",")]
    table = bs.variants("content")
    for k in ks:
        table[f"goobs cached K={k}"] = ("goobs", {"n_negatives": k, "cached_vectors": True})
    bs.variants = lambda towers, negatives=None: table  # the Runner looks labels up here
    data, source = bs.load_train()
    labels = ["in-batch", *(f"goobs cached K={k}" for k in ks)]
    load0 = os.getloadavg()
    runners = {label: bs.Runner(label, data, args.threads, "content") for label in labels}
    t0 = time.perf_counter()
    tp = bs.throughput(runners, data, args.rounds, args.steps)
    ms = tp["step_ms_median"]
    base = ms["in-batch"]
    slope = ((ms[labels[-1]] - ms[labels[1]]) / (ks[-1] - ks[0])) if len(ks) > 1 else None
    res = {"command": f"PYTHONPATH=src python bench/bench_cached_k.py --ks {args.ks} "
                      f"--rounds {args.rounds} --steps {args.steps} --threads {args.threads}",
           "content": source, "batch": bs.BATCH, "load_avg_start": load0,
           "load_avg_end": os.getloadavg(), "seconds": time.perf_counter() - t0,
           "throughput": tp, "fixed_ms": ms[labels[1]] - base, "ms_per_negative": slope}
    out = bs.OUT / "cached_k.json"
    atomic_write_text(out, json.dumps(res, indent=2) + "\n")
    lines = ["# goobs with cached vectors: step time against negatives per example", "",
             f"`{res['command']}`", "",
             f"Content towers, batch {bs.BATCH}, one thread, samplers interleaved; load "
             f"{load0[0]:.2f} at start, {res['load_avg_end'][0]:.2f} at end.", "",
             "| sampler | CPU ms/step median | x in-batch |", "|---|---|---|"]
    lines += [f"| {n} | {ms[n]:.2f} | {tp['ratio_to_in_batch'][n]:.3f} |" for n in labels]
    lines += ["", f"Fixed cost over in-batch (K = {ks[0]}): {res['fixed_ms']:.2f} ms per step; "
              f"slope: {slope:.3f} ms per extra negative per example."]
    atomic_write_text(bs.OUT / "cached_k.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
