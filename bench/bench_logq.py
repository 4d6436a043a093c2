"""Effect of the logQ mode on cluster-goobs, on the synthetic 30,000-item / 300-cluster catalog.

Each run trains the two-tower model (ids + 50-item history, no content) with cluster-goobs
(in-batch + 8 same-cluster + 8 random pool negatives per example) under one logQ setting,
then ranks the whole catalog for every user's held-out interaction (HR@50, HR@100, seen
items masked). Settings: ``mixture`` (each candidate corrected by its summed expected count
under all proposals), ``block`` (by its own proposal), ``none`` (extra blocks uncorrected,
in-batch columns still logQ-corrected), and ``off`` (no correction at all); in-batch alone as
the reference. The clusters are the catalog's latent clusters (an oracle clustering).

Run: PYTHONPATH=src .venv/bin/python bench/bench_logq.py [--seeds 2] [--epochs 3] [--lr 5e-3]
Writes bench/results/logq.json and bench/results/logq.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from clusterneg.data.dataset import Interactions
from clusterneg.eval import evaluate_scores
from clusterneg.model import ModelConfig
from clusterneg.outputs import atomic_write_text
from clusterneg.train.config import TrainConfig
from clusterneg.train.trainer import TrainData, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_samplers import N_CLUSTERS, N_ITEMS, N_USERS, synthetic  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
SETTINGS = {  # name -> (sampler, sampler options, global logq switch)
    "in-batch": ("in-batch", {}, True),
    "cg mixture": ("cluster-goobs", {"n_cluster": 8, "n_random": 8, "logq_mode": "mixture"}, True),
    "cg block": ("cluster-goobs", {"n_cluster": 8, "n_random": 8, "logq_mode": "block"}, True),
    "cg none": ("cluster-goobs", {"n_cluster": 8, "n_random": 8, "logq_mode": "none"}, True),
    "cg off": ("cluster-goobs", {"n_cluster": 8, "n_random": 8}, False),
}


def split(data: dict, seed: int = 0) -> tuple[Interactions, np.ndarray, np.ndarray]:
    """Distinct (user, item) pairs; one random pair per user (with >= 2) held out: returns the
    training pairs, the test users and their held-out items."""
    rng = np.random.default_rng(seed)
    keys = np.unique(data["users"] * N_ITEMS + data["items"])  # a repeated pair counts once
    users, items = keys // N_ITEMS, keys % N_ITEMS
    order = rng.permutation(len(users))
    first = np.unique(users[order], return_index=True)[1]  # one random row per user
    held = order[first]
    counts = np.bincount(users, minlength=N_USERS)
    held = held[counts[users[held]] >= 2]
    mask = np.ones(len(users), dtype=bool)
    mask[held] = False
    train_set = Interactions(users[mask], items[mask], None, None)
    return train_set, users[held], items[held]


def evaluate(model, train_set: Interactions, test_users: np.ndarray,
             test_items: np.ndarray) -> dict[str, float]:
    model.eval()
    with torch.no_grad():
        items = model.all_item_vectors()
    exclude = (np.r_[0, np.cumsum(np.bincount(train_set.user, minlength=N_USERS))],
               train_set.item[np.argsort(train_set.user, kind="stable")])
    targets = (np.r_[0, np.cumsum(np.bincount(test_users, minlength=N_USERS))],
               test_items[np.argsort(test_users, kind="stable")])

    def score(u: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.user_vectors(u) @ items.T

    res = evaluate_scores(score, None, targets, exclude, N_ITEMS, ks=(50, 100))
    return {k: res.summary[k] for k in ("hr@50", "hr@100")}


def run(name: str, seed: int, epochs: int, lr: float, data: TrainData, test: tuple) -> dict:
    sampler, opts, logq = SETTINGS[name]
    cfg = TrainConfig(sampler=sampler, sampler_options=opts, epochs=epochs, batch_size=1024,
                      lr=lr, logq_correction=logq, seed=seed, threads=2)
    t0 = time.perf_counter()
    res = train(data, ModelConfig(dim=64, temperature=0.05, history_len=50, content=False),
                cfg)
    metrics = evaluate(res.model, data.train, *test)
    return {"setting": name, "seed": seed, **metrics, "seconds": time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=5e-3)
    args = parser.parse_args()
    raw = synthetic()
    train_set, tu, ti = split(raw)
    data = TrainData(N_USERS, N_ITEMS, train_set, item_cluster=raw["item_cluster"],
                     n_clusters=N_CLUSTERS)
    rows = [run(name, seed, args.epochs, args.lr, data, (tu, ti))
            for seed in range(args.seeds) for name in SETTINGS]
    summary = {name: {m: statistics.mean(r[m] for r in rows if r["setting"] == name)
                      for m in ("hr@50", "hr@100")} for name in SETTINGS}
    cmd = f"PYTHONPATH=src .venv/bin/python bench/bench_logq.py --seeds {args.seeds} " \
          f"--epochs {args.epochs} --lr {args.lr}"
    OUT.mkdir(parents=True, exist_ok=True)
    atomic_write_text(OUT / "logq.json", json.dumps({"command": cmd, "runs": rows,
                                               "mean": summary}, indent=2) + "\n")
    lines = ["# logQ mode and cluster-goobs (synthetic 30k items, 300 latent clusters)", "",
             f"`{cmd}`: {len(tu)} held-out interactions, whole-catalog ranking, seen items "
             "masked; mean over seeds (per-seed values in logq.json).", "",
             "| setting | HR@50 | HR@100 | per seed HR@50 |", "|---|---|---|---|"]
    for name, m in summary.items():
        per = ", ".join(f"{r['hr@50']:.4f}" for r in rows if r["setting"] == name)
        lines.append(f"| {name} | {m['hr@50']:.4f} | {m['hr@100']:.4f} | {per} |")
    atomic_write_text(OUT / "logq.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
