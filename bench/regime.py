"""The regime study (issue 11, step 4): gain of each sampler over in-batch against the
catalog-to-batch ratio N / B.

For one dataset, every batch size and every sampler is trained once (one seed, the same
split, the same validation user sample, epochs capped) under a protocol (``paper``: ID-only
towers, cluster:random 1:31 / 1:15; ``default``: content towers) and evaluated once on the
test split over every user. Each sampler's HR@50 change over in-batch at the same batch size
comes with the paired bootstrap 95% interval over users. Results are written after every
run (resumable: finished runs are skipped), per-user arrays go to ``runs/regime/`` (not
committed), and ``--plot`` draws every ``regime_*.json`` into one figure.

    PYTHONPATH=src nice .venv/bin/python bench/regime.py --dataset ml-100k \
        --batch-sizes 32,128,512,1024 --samplers in-batch,goobs,cluster-goobs,full \
        --protocol paper --epochs 15 --threads 1
    PYTHONPATH=src .venv/bin/python bench/regime.py --plot

Temperature is the default (0.2) for every sampler: no tuning in this study (the budget of
``compare --budget`` is for the headline comparison).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clusterneg.experiment import ExperimentConfig, prepare, run
from clusterneg.model import ModelConfig
from clusterneg.presets import apply_protocol
from clusterneg.report.html import write_text_atomic
from clusterneg.report.summary import paired_compare
from clusterneg.train.config import TrainConfig

RESULTS = Path(__file__).parent / "results"
PER_USER = Path("runs/regime")
METRICS = ("hr@50", "recall@50", "ndcg@10")
BASE = "in-batch"


def short_name(dataset: str) -> str:
    return dataset.rstrip("/").rsplit("/", 1)[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--batch-sizes", default="32,128,512,1024")
    ap.add_argument("--samplers", default="in-batch,goobs,cluster-goobs,full")
    ap.add_argument("--protocol", default="paper")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--patience", type=int, default=2)
    ap.add_argument("--valid-users", type=int, default=3000)
    ap.add_argument("--n-clusters", default="auto")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--plot", action="store_true", help="only draw the figure and table")
    args = ap.parse_args()
    if args.plot:
        plot_all()
        return
    torch.set_num_threads(args.threads)
    name = short_name(args.dataset)
    out = RESULTS / f"regime_{name}.json"
    doc = json.loads(out.read_text()) if out.exists() else {"rows": []}
    nc = args.n_clusters if args.n_clusters == "auto" else int(args.n_clusters)
    exp, opts = apply_protocol(args.protocol, ExperimentConfig(
        dataset=args.dataset, n_clusters=nc, valid_users=args.valid_users), {})
    prep = prepare(exp)
    doc.update(dataset=name, n_items=prep.dataset.n_items, n_users=prep.dataset.n_users,
               n_clusters=prep.n_clusters, protocol=args.protocol,
               cluster_rule=(getattr(prep.cluster_info, "meta", {}) or {}).get(
                   "auto", {}).get("reason", f"given: {nc}"),
               command="PYTHONPATH=src nice .venv/bin/python bench/regime.py " + " ".join(
                   sys.argv[1:]))
    samplers = args.samplers.split(",")
    for b in (int(x) for x in args.batch_sizes.split(",")):
        for s in samplers:
            if any(r["batch_size"] == b and r["sampler"] == s for r in doc["rows"]):
                continue
            row = train_one(prep, s, b, opts.get(s, {}), args)
            doc["rows"].append(row)
            add_intervals(doc, name)
            write_text_atomic(out, json.dumps(doc, indent=1, allow_nan=False) + "\n")
            print(f"{name} B={b} {s}: hr@50 {row['metrics']['hr@50']:.4f} "
                  f"({row['train_seconds']:.0f} s, best epoch {row['best_epoch']})", flush=True)


def train_one(prep: Any, sampler: str, batch: int, opts: dict, args: argparse.Namespace
              ) -> dict[str, Any]:
    train_cfg = TrainConfig(sampler=sampler, sampler_options=opts, epochs=args.epochs,
                            batch_size=batch, patience=args.patience, threads=args.threads)
    t0 = time.perf_counter()
    try:
        res = run(prep, ModelConfig(), train_cfg)
    except Exception as exc:  # e.g. the full softmax refusing a catalog that does not fit
        return {"batch_size": batch, "sampler": sampler, "error": str(exc),
                "ratio": prep.dataset.n_items / batch, "metrics": {"hr@50": math.nan},
                "train_seconds": time.perf_counter() - t0, "best_epoch": -1}
    PER_USER.mkdir(parents=True, exist_ok=True)
    np.savez(PER_USER / f"{short_name(prep.config.dataset)}_{batch}_{sampler}.npz",
             **res.per_user)
    return {"batch_size": batch, "sampler": sampler, "ratio": prep.dataset.n_items / batch,
            "options": res.config["sampler"]["options"],
            "metrics": {k: res.metrics[k] for k in (*METRICS, "hr@100")},
            "top100_share": res.exposure.get("top100_share"),
            "train_seconds": res.train["train_seconds"], "best_epoch": res.train["best_epoch"],
            "epochs": res.train["epochs"], "examples_per_s": res.train["examples_per_s"]}


def add_intervals(doc: dict[str, Any], name: str) -> None:
    """Paired change over in-batch at the same batch size, for every row that lacks it."""
    for row in doc["rows"]:
        if row["sampler"] == BASE or "change" in row or "error" in row:
            continue
        base = PER_USER / f"{name}_{row['batch_size']}_{BASE}.npz"
        mine = PER_USER / f"{name}_{row['batch_size']}_{row['sampler']}.npz"
        if not (base.exists() and mine.exists()):
            continue
        a, b = dict(np.load(base)), dict(np.load(mine))
        row["change"] = {}
        for m in METRICS:
            t = paired_compare([a], [b], m, n_boot=1000, seed=0)
            row["change"][m] = {"rel": t["mean_diff"] / t["base_mean"],
                                "rel_ci_low": t["rel_ci_low"], "rel_ci_high": t["rel_ci_high"],
                                "real": bool(t["real"])}


def plot_all() -> None:
    """bench/results/regime.png / .svg and regime.md from every regime_*.json."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    docs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("regime_*.json"))]
    fig, ax = plt.subplots(figsize=(8, 5))
    marks = {"goobs": "o", "cluster-goobs": "s", "full": "^", "cluster-dns": "D",
             "cluster-follow": "v", "mixed": "x"}
    lines = ["# Regime study: gain over in-batch vs catalog / batch", ""]
    for doc in docs:
        lines += [f"## {doc['dataset']} ({doc['n_items']} items, protocol {doc['protocol']}, "
                  f"{doc['n_clusters']} clusters)", "", f"`{doc['command']}`", "",
                  f"Clusters: {doc.get('cluster_rule', '')}", "",
                  "| B | N/B | sampler | HR@50 | change vs in-batch [95% CI] | best epoch | "
                  "train s |", "|---:|---:|:---|---:|---:|---:|---:|"]
        for row in sorted(doc["rows"], key=lambda r: (r["batch_size"], r["sampler"])):
            ch = row.get("change", {}).get("hr@50")
            cell = ("baseline" if row["sampler"] == BASE else row.get("error", "—")[:60]
                    if ch is None else f"{ch['rel']:+.1%} [{ch['rel_ci_low']:+.1%}, "
                    f"{ch['rel_ci_high']:+.1%}]" + (" ✓" if ch["real"] else ""))
            lines.append(f"| {row['batch_size']} | {row['ratio']:.0f} | {row['sampler']} | "
                         f"{row['metrics']['hr@50']:.4f} | {cell} | {row['best_epoch']} | "
                         f"{row['train_seconds']:.0f} |")
        lines.append("")
        for s, mk in marks.items():
            pts = [(r["ratio"], r["change"]["hr@50"]) for r in doc["rows"]
                   if r["sampler"] == s and "hr@50" in r.get("change", {})]
            if not pts:
                continue
            pts.sort()
            x = [p[0] for p in pts]
            y = [100 * p[1]["rel"] for p in pts]
            err = [[100 * (p[1]["rel"] - p[1]["rel_ci_low"]) for p in pts],
                   [100 * (p[1]["rel_ci_high"] - p[1]["rel"]) for p in pts]]
            ax.errorbar(x, y, yerr=err, marker=mk, capsize=3, alpha=0.8,
                        label=f"{s} ({doc['dataset']})")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("catalog size / batch size (N / B)")
    ax.set_ylabel("HR@50 change over in-batch (%), 95% paired CI")
    ax.set_title("Where do sampled negatives pay off? (one seed per point)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(RESULTS / f"regime.{ext}", dpi=120)
    write_text_atomic(RESULTS / "regime.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
