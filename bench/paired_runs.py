"""Paired intervals between runs of different ``compare`` output directories.

``compare`` pairs its samplers over users inside one directory; it cannot hold the same
sampler twice with different options. This script pairs any two of them across
directories: each labelled run set (``LABEL=DIR:SAMPLER``, every finished seed) is
reloaded from its saved model (``RunStore.load``, as ``compare --resume`` does) and evaluated
once on the test split of the data it was trained on (the same users for every run, so the
pairing is exact); per-user values are averaged over seeds and every requested pair gets the
paired bootstrap 95% interval over users
(``clusterneg.report.summary.paired_compare``, as in the compare report). Recall@50 by the
target's training popularity (the report's buckets) is listed per run set, to see which
items a change helps.

Every run must come from the same experiment (dataset, split, clusters): the script
checks that their saved experiment configs are equal.

    PYTHONPATH=src nice .venv/bin/python bench/paired_runs.py --tag a3_negative_grad \\
        --run in-batch=runs/a3-paper-nograd:in-batch \\
        --run fresh=runs/a3-paper-goobs-fresh:goobs \\
        --run no-grad=runs/a3-paper-nograd:goobs \\
        --run cached=runs/a3-paper-goobs-cached:goobs \\
        --pairs in-batch:fresh,in-batch:no-grad,in-batch:cached,fresh:no-grad,no-grad:cached

Writes ``bench/results/<tag>.json`` and ``bench/results/<tag>.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from clusterneg.compare_store import SETTINGS, RunStore
from clusterneg.outputs import atomic_write_text
from clusterneg.report.summary import paired_compare
from clusterneg.runs import load_run

RESULTS = Path(__file__).parent / "results"
METRICS = ("hr@50", "recall@50", "ndcg@10")


def open_compare(root: Path) -> RunStore:
    """A finished or interrupted ``compare --out`` directory, opened to read (nothing is
    written: the store only writes from ``start``)."""
    settings = json.loads((root / SETTINGS).read_text(encoding="utf-8"))
    return RunStore(root, settings, resume=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", action="append", required=True, metavar="LABEL=DIR:SAMPLER")
    ap.add_argument("--pairs", required=True, metavar="A:B,...",
                    help="label pairs; the change is B relative to A")
    ap.add_argument("--tag", required=True)
    ap.add_argument("--seeds", default=None, metavar="0,1,...",
                    help="only these seeds of every run set (default: every finished seed), "
                         "e.g. to pair a one-seed run with the same seed of the others")
    args = ap.parse_args()
    only = None if args.seeds is None else {int(x) for x in args.seeds.split(",")}
    prep, experiment = None, None
    per_user: dict[str, list[Any]] = {}
    summary: dict[str, dict[str, Any]] = {}
    for spec in args.run:
        label, _, where = spec.partition("=")
        if not label or ":" in label or "," in label:
            raise SystemExit(f"--run {spec!r}: a label needs no ':' or ',' (they split --pairs)")
        root, _, sampler = where.rpartition(":")
        store = open_compare(Path(root))
        seeds = sorted(r["seed"] for r in store.rows() if r["sampler"] == sampler
                       and (only is None or r["seed"] in only))
        if not seeds:
            raise SystemExit(f"{root}: no finished run of {sampler!r}"
                             + ("" if only is None else f" with seed in {sorted(only)}"))
        per_user[label], rows = [], []
        for seed in seeds:
            run = store.run_dir(sampler, seed)
            if prep is None:  # the data of the first run, checked against its fingerprint
                _, prep, _ = load_run(run)
            res = store.load(sampler, seed, prep)
            if experiment is None:
                experiment = res.config["experiment"]
            elif res.config["experiment"] != experiment:
                raise SystemExit(f"{run}: trained on another experiment than the first run")
            per_user[label].append(res.per_user)
            rows.append({"run": str(run), "options": res.config["sampler"]["options"],
                         "metrics": {m: res.metrics[m] for m in METRICS},
                         "top100_share": res.exposure.get("top100_share"),
                         "bucket_recall": [float(x) for x in res.buckets.get("recall", [])],
                         "bucket_max_pop": [int(x) for x in res.buckets.get("max_pop", [])]})
            print(f"{label} {run.name}: hr@50 {res.metrics['hr@50']:.4f}", flush=True)
        summary[label] = {"source": where, "seeds": rows, "seed_ids": seeds,
                          "mean": {m: float(np.mean([r["metrics"][m] for r in rows]))
                                   for m in METRICS},
                          "top100_share": float(np.mean([r["top100_share"] for r in rows])),
                          "bucket_recall": np.mean([r["bucket_recall"] for r in rows],
                                                   axis=0).tolist(),
                          "bucket_max_pop": rows[0]["bucket_max_pop"]}
    pairs = []
    for pair in args.pairs.split(","):
        a, b = pair.split(":")
        change = {}
        for m in METRICS:
            t = paired_compare(per_user[a], per_user[b], m, n_boot=1000, seed=0)
            change[m] = {"rel": t["mean_diff"] / t["base_mean"], "rel_ci_low": t["rel_ci_low"],
                         "rel_ci_high": t["rel_ci_high"], "real": bool(t["real"])}
        pairs.append({"a": a, "b": b, "change": change})
    command = "PYTHONPATH=src nice .venv/bin/python bench/paired_runs.py " + " ".join(sys.argv[1:])
    doc = {"command": command, "experiment": experiment, "runs": summary, "pairs": pairs,
           "seeds": args.seeds}
    atomic_write_text(RESULTS / f"{args.tag}.json", json.dumps(doc, indent=1) + "\n")
    atomic_write_text(RESULTS / f"{args.tag}.md", "\n".join(table(doc)) + "\n")
    print("\n".join(table(doc)))


def cell(c: dict[str, Any]) -> str:
    return (f"{c['rel']:+.1%} [{c['rel_ci_low']:+.1%}, {c['rel_ci_high']:+.1%}]"
            + (" ✓" if c["real"] else ""))


def table(doc: dict[str, Any]) -> list[str]:
    n_seeds = {len(r["seeds"]) for r in doc["runs"].values()}
    out = [f"# Paired comparison across compare directories ({doc['experiment']['dataset']})",
           "", f"`{doc['command']}`", "",
           f"Test split, every user; {'/'.join(map(str, sorted(n_seeds)))} seed(s) per run set"
           + (f" (seeds {doc['seeds']})" if doc.get("seeds") else "") + ", "
           "per-user values averaged over seeds; brackets: paired bootstrap 95% interval over "
           "users, relative to the first of the pair (✓: excludes 0).", "",
           "| run set | source | HR@50 | Recall@50 | NDCG@10 | top-100 share |",
           "|:---|:---|---:|---:|---:|---:|"]
    for label, r in doc["runs"].items():
        m = r["mean"]
        out.append(f"| {label} | `{r['source']}` | {m['hr@50']:.4f} | {m['recall@50']:.4f} | "
                   f"{m['ndcg@10']:.4f} | {r['top100_share']:.1%} |")
    first = next(iter(doc["runs"].values()))
    if first["bucket_recall"]:
        edges = ", ".join(f"<= {p}" for p in first["bucket_max_pop"])
        out += ["", f"Recall@50 of the test targets by the target's training popularity "
                f"(equal-item-count buckets, training interactions {edges}):", "",
                "| run set | " + " | ".join(f"bucket {i}" for i in
                                            range(len(first["bucket_recall"]))) + " |",
                "|:---|" + "---:|" * len(first["bucket_recall"])]
        out += [f"| {label} | " + " | ".join(f"{x:.4f}" for x in r["bucket_recall"]) + " |"
                for label, r in doc["runs"].items()]
    out += ["", "| B against A | HR@50 | Recall@50 | NDCG@10 |", "|:---|---:|---:|---:|"]
    for p in doc["pairs"]:
        out.append(f"| {p['b']} vs {p['a']} | " + " | ".join(cell(p["change"][m])
                                                         for m in METRICS) + " |")
    return out


if __name__ == "__main__":
    main()
