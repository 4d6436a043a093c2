"""Is the in-batch two-tower baseline strong? Compare it with popularity, BPR, ALS and EASE.

Every model is tuned on the validation split (grid below, best recall@50) and evaluated
once on the test split, ranking the whole corpus with train (+ valid) items masked.

    PYTHONPATH=src .venv/bin/python bench/baselines.py --dataset ml-100k --split random
    PYTHONPATH=src .venv/bin/python bench/baselines.py \
        --dataset ../shared/data/amazon-office --split leave-last-out

Writes bench/results/baselines_<dataset>.json and .md; ``--merge`` adds or replaces only
the models named in ``--models`` in an existing result file (each row keeps the command
that produced it).

EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019) is the closed
form ``B = I - P / diag(P)`` with ``P = (X^T X + lambda I)^-1``, diagonal forced to 0; it
needs an N x N inverse, so it is skipped (with the reason) above ``EASE_MAX_ITEMS`` items.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from clusterneg.experiment import ExperimentConfig, Prepared, evaluate_ranking, prepare, run
from clusterneg.model import ModelConfig
from clusterneg.outputs import atomic_write_text
from clusterneg.train.config import TrainConfig

HEAD = ("recall@20", "recall@50", "ndcg@10", "hr@50", "hr@100", "mrr")

GRIDS = {
    "bpr": {"factors": [64, 128], "learning_rate": [0.01, 0.05], "regularization": [0.001, 0.01],
            "iterations": [200]},
    "als": {"factors": [64, 128], "regularization": [0.01, 0.1, 1.0], "alpha": [1.0, 10.0],
            "iterations": [15]},
    "ease": {"l2": [10.0, 50.0, 200.0, 500.0, 1000.0]},
    "two-tower": {"temperature": [0.1, 0.2, 0.3], "user_id": [True, False], "lr": [2e-3]},
}


def _grid(spec: dict[str, list]) -> list[dict]:
    keys = sorted(spec)
    return [dict(zip(keys, v, strict=True)) for v in itertools.product(*(spec[k] for k in keys))]


def _eval_factors(prep: Prepared, uf: np.ndarray, itf: np.ndarray, part: str) -> dict:
    users_t, items_t = torch.from_numpy(uf).float(), torch.from_numpy(itf).float()
    return evaluate_ranking(lambda u: users_t[u] @ items_t.T, prep, part)


def popularity(prep: Prepared) -> dict:
    pop = torch.from_numpy(prep.dataset.item_popularity(prep.split.train)).float()
    ev = evaluate_ranking(lambda u: pop.expand(len(u), -1), prep, "test")
    return {"model": "popularity", "grid": [], "best": {}, "test": ev.summary,
            "exposure": ev.exposure}


def implicit_model(prep: Prepared, kind: str, seed: int = 0, threads: int = 0) -> dict:
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    tr = prep.split.train
    mat = sp.csr_matrix((np.ones(len(tr), np.float32), (tr.user, tr.item)),
                        shape=(prep.dataset.n_users, prep.dataset.n_items))
    mat.data[:] = 1.0
    cls = BayesianPersonalizedRanking if kind == "bpr" else AlternatingLeastSquares
    tried, best = [], None
    for params in _grid(GRIDS[kind]):
        p = dict(params)
        if kind == "als":
            alpha = p.pop("alpha")
            model = cls(**p, random_state=seed, calculate_training_loss=False, alpha=alpha,
                        num_threads=threads)
        else:
            model = cls(**p, random_state=seed, num_threads=threads)
        model.fit(mat, show_progress=False)
        ev = _eval_factors(prep, model.user_factors, model.item_factors, "valid")
        tried.append({"params": params, "valid_recall@50": ev.summary["recall@50"]})
        if best is None or ev.summary["recall@50"] > best[0]:
            best = (ev.summary["recall@50"], params, model)
    ev = _eval_factors(prep, best[2].user_factors, best[2].item_factors, "test")
    return {"model": kind, "grid": tried, "best": best[1], "test": ev.summary,
            "exposure": ev.exposure}


EASE_MAX_ITEMS = 20_000  # 20k x 20k float64 is 3.2 GB, and its inverse as much again


def ease_weights(x, l2: float) -> np.ndarray:
    """EASE item-item weights [N, N] from a sparse user-item matrix ``x`` (Steck 2019, eq. 8).

    Example:
        >>> import scipy.sparse as sp
        >>> b = ease_weights(sp.csr_matrix(np.array([[1., 1., 0.], [1., 0., 1.]])), 1.0)
        >>> bool(np.allclose(np.diag(b), 0)), round(float(b[1, 0]), 4)
        (True, 0.5)
    """
    g = (x.T @ x).toarray().astype(np.float64)
    g[np.diag_indices_from(g)] += l2
    p = np.linalg.inv(g)
    b = -p / np.diag(p)[None, :]
    b[np.diag_indices_from(b)] = 0.0
    return b


def ease(prep: Prepared) -> dict:
    import scipy.sparse as sp

    n = prep.dataset.n_items
    if n > EASE_MAX_ITEMS:
        return {"model": "ease", "skipped": f"{n} items: the {n} x {n} inverse does not fit "
                f"(limit {EASE_MAX_ITEMS})"}
    tr = prep.split.train
    x = sp.csr_matrix((np.ones(len(tr)), (tr.user, tr.item)), shape=(prep.dataset.n_users, n))
    x.data[:] = 1.0

    def scorer(b: np.ndarray):
        return lambda u: torch.from_numpy(np.asarray(x[u.numpy()] @ b)).float()

    tried, best = [], None
    for params in _grid(GRIDS["ease"]):
        b = ease_weights(x, params["l2"])
        ev = evaluate_ranking(scorer(b), prep, "valid")
        tried.append({"params": params, "valid_recall@50": ev.summary["recall@50"]})
        if best is None or ev.summary["recall@50"] > best[0]:
            best = (ev.summary["recall@50"], params, b)
    ev = evaluate_ranking(scorer(best[2]), prep, "test")
    return {"model": "ease", "grid": tried, "best": best[1], "test": ev.summary,
            "exposure": ev.exposure}


def two_tower(prep: Prepared, epochs: int, seed: int = 0) -> dict:
    tried, best = [], None
    for params in _grid(GRIDS["two-tower"]):
        mc = ModelConfig(temperature=params["temperature"], user_id=params["user_id"])
        tc = TrainConfig(sampler="in-batch", epochs=epochs, lr=params["lr"], seed=seed,
                         threads=1)
        res = run(prep, mc, tc, keep_model=True)
        score = res.valid.get("recall@50", float("nan"))
        tried.append({"params": params, "valid_recall@50": score,
                      "best_epoch": res.train["best_epoch"],
                      "examples_per_s": res.train["examples_per_s"]})
        if best is None or score > best[0]:
            best = (score, params, res)
    res = best[2]
    return {"model": "two-tower in-batch", "grid": tried, "best": best[1], "test": res.metrics,
            "exposure": res.exposure}


def to_markdown(out: dict) -> str:
    lines = [f"# Baselines on {out['dataset']} ({out['split']} split)", "",
             f"`{out['command']}`", "",
             f"{out['n_users']} users, {out['n_items']} items; tuned on validation "
             "(best recall@50), evaluated once on test over the whole corpus.", "",
             "| model | " + " | ".join(HEAD) + " | top100_share | coverage@50 | best config |",
             "|---" * (len(HEAD) + 4) + "|"]
    for r in out["models"]:
        if "skipped" in r:
            lines.append(f"| {r['model']} | skipped: {r['skipped']} |" + " |" * (len(HEAD) + 2))
            continue
        vals = " | ".join(f"{r['test'][k]:.4f}" for k in HEAD)
        exp = f"{r['exposure']['top100_share']:.3f} | {r['exposure']['coverage@50']:.3f}"
        lines.append(f"| {r['model']} | {vals} | {exp} | `{json.dumps(r['best'])}` |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--split", default="random")
    ap.add_argument("--encoder", default="minilm")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--models", default="popularity,bpr,als,two-tower")
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--threads", type=int, default=2,
                    help="CPU threads for torch and implicit (0: implicit uses every core)")
    ap.add_argument("--merge", action="store_true",
                    help="add / replace these models in an existing result file")
    args = ap.parse_args()
    torch.set_num_threads(max(args.threads, 1))
    t0 = time.perf_counter()
    prep = prepare(ExperimentConfig(dataset=args.dataset, split=args.split,
                                    encoder=args.encoder))
    models = []
    for name in args.models.split(","):
        t = time.perf_counter()
        if name == "popularity":
            r = popularity(prep)
        elif name in ("bpr", "als"):
            r = implicit_model(prep, name, threads=args.threads)
        elif name == "ease":
            r = ease(prep)
        else:
            r = two_tower(prep, args.epochs)
        r["seconds"] = time.perf_counter() - t
        r["command"] = "PYTHONPATH=src .venv/bin/python " + " ".join(sys.argv)
        models.append(r)
        print(name, r.get("skipped") or {k: round(r["test"][k], 4) for k in HEAD}, flush=True)
    name = Path(args.dataset).name
    out = {"dataset": name, "split": args.split, "encoder": args.encoder,
           "n_users": prep.dataset.n_users, "n_items": prep.dataset.n_items,
           "command": "PYTHONPATH=src .venv/bin/python " + " ".join(sys.argv),
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "torch": torch.__version__},
           "seconds": time.perf_counter() - t0, "models": models}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    stem = Path(args.out) / f"baselines_{name}_{args.split}_{args.encoder}"
    if args.merge and stem.with_suffix(".json").exists():
        old = json.loads(stem.with_suffix(".json").read_text())
        mine = {m["model"] for m in models}
        out["models"] = [m for m in old["models"] if m["model"] not in mine] + models
        out["command"] = old["command"] + " ; " + out["command"]
    atomic_write_text(stem.with_suffix(".json"), json.dumps(out, indent=2) + "\n")
    atomic_write_text(stem.with_suffix(".md"), to_markdown(out))


if __name__ == "__main__":
    main()
