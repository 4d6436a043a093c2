"""Validation-only sweep: how sampler settings move the validation metrics.

Trains each setting on the train split and reports the VALIDATION metrics of the best epoch
(the test split is never touched), so the chosen defaults are not tuned on test.

    PYTHONPATH=src .venv/bin/python bench/sweep.py --dataset ../shared/data/amazon-office \
        --settings 'in-batch' 'cluster-goobs:n_negatives=16' --epochs 20

A setting is ``SAMPLER[:key=value,...]``; keys ``temperature``, ``lr``, ``history_len``,
``logq`` (true/false) and ``n_clusters`` are model / train / experiment options, the rest go
to the sampler. Writes bench/results/sweep_<name>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from clusterneg.commands._common import parse_options
from clusterneg.experiment import ExperimentConfig, prepare, run
from clusterneg.model import ModelConfig
from clusterneg.outputs import atomic_write_text
from clusterneg.train.config import TrainConfig

MODEL_KEYS = {"temperature", "history_len", "dim", "user_id", "item_id", "content_hidden"}
TRAIN_KEYS = {"lr", "logq_correction", "batch_size", "epochs", "weight_decay"}
SHOW = ("hr@50", "hr@100", "recall@50", "ndcg@10", "mrr")


def parse_setting(text: str) -> tuple[str, dict, dict, dict]:
    sampler, _, rest = text.partition(":")
    opts = parse_options([p for p in rest.split(",") if p]) if rest else {}
    model = {k: opts.pop(k) for k in list(opts) if k in MODEL_KEYS}
    # a boolean logq switches the correction off/on (train); a string picks the sampler's mode
    # (the recorded commands in bench/results write both as "logq")
    if "logq" in opts:
        logq = opts.pop("logq")
        opts["logq_mode" if isinstance(logq, str) else "logq_correction"] = logq
    train = {k: opts.pop(k) for k in list(opts) if k in TRAIN_KEYS}
    return sampler, model, train, opts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--settings", nargs="+", required=True)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--n-clusters", default="auto")
    ap.add_argument("--encoder", default="minilm")
    ap.add_argument("--name", default="sweep")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    nc = args.n_clusters if args.n_clusters == "auto" else int(args.n_clusters)
    prep = prepare(ExperimentConfig(dataset=args.dataset, encoder=args.encoder, n_clusters=nc))
    rows = []
    for setting in args.settings:
        sampler, m, t, opts = parse_setting(setting)
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            mc = replace(ModelConfig(), **m)
            tc = replace(TrainConfig(epochs=args.epochs), sampler=sampler,
                         sampler_options=opts, seed=seed, **t)
            res = run(prep, mc, tc)
            row = {"setting": setting, "seed": seed, "valid": res.valid,
                   "best_epoch": res.train["best_epoch"], "epochs": res.train["epochs"],
                   "examples_per_s": res.train["examples_per_s"],
                   "seconds": time.perf_counter() - t0,
                   "sampler_stats": res.train.get("sampler_stats", {})}
            rows.append(row)
            print(json.dumps({k: row[k] for k in ("setting", "seed", "best_epoch")}
                             | {k: round(res.valid.get(k, float("nan")), 4) for k in SHOW}
                             | {"s": round(row["seconds"], 1)}), flush=True)
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    doc = {"command": "PYTHONPATH=src .venv/bin/python " + " ".join(sys.argv),
           "dataset": Path(args.dataset).name, "n_clusters": prep.n_clusters, "rows": rows}
    atomic_write_text(out / f"sweep_{args.name}.json", json.dumps(doc, indent=2) + "\n")
    lines = [f"# Validation sweep: {doc['dataset']} ({prep.n_clusters} clusters)", "",
             f"`{doc['command']}`", "", "Validation split only (best epoch).", "",
             "| setting | seed | " + " | ".join(SHOW) + " | best epoch | ex/s |",
             "|---" * (len(SHOW) + 4) + "|"]
    for r in rows:
        vals = " | ".join(f"{r['valid'].get(k, float('nan')):.4f}" for k in SHOW)
        lines.append(f"| `{r['setting']}` | {r['seed']} | {vals} | {r['best_epoch']} | "
                     f"{r['examples_per_s']:.0f} |")
    atomic_write_text(out / f"sweep_{args.name}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
