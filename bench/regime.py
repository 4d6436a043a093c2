"""The regime study (issue 11, step 4): gain of each sampler over in-batch against the
catalog-to-batch ratio N / B.

For one dataset, every batch size and every sampler is trained once (one seed, the same
split, the same validation user sample, epochs capped) under a protocol (``paper``: ID-only
towers, cluster:random 1:31 / 1:15; ``default``: content towers) and evaluated once on the
test split over every user. Each sampler's HR@50 change over in-batch at the same batch size
comes with the paired bootstrap 95% interval over users. Results are written after every
run (resumable: finished runs are skipped), per-user arrays go to ``runs/regime/`` (not
committed), and ``--plot`` draws every ``regime_*.json`` into one figure.

On a ``clusterneg data synth`` folder the sampler ``cluster-goobs@latent`` is cluster-goobs
fed the generator's TRUE item clusters (``latent_items.parquet``) instead of the k-means
clusters of the text embedding: an upper bound on what a better clustering could give.

    PYTHONPATH=src nice .venv/bin/python bench/regime.py --dataset ml-100k \
        --batch-sizes 32,128,512,1024 --samplers in-batch,goobs,cluster-goobs,full \
        --protocol paper --epochs 15 --threads 1
    PYTHONPATH=src .venv/bin/python bench/regime.py --plot

``--label`` names a series of its own (file ``regime_<label>.json``, its own colour), e.g. the
settings of a ``compare`` study (``--no-user-id``, ``-o goobs:cached_vectors=true``). Several
processes may fill one series at once (one per batch size, say): each row is added under a
file lock to the series as it is on disk.

Temperature is the default (0.2) for every sampler: no tuning in this study (the budget of
``compare --budget`` is for the headline comparison).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clusterneg.commands._common import parse_options
from clusterneg.experiment import ExperimentConfig, prepare, run
from clusterneg.model import ModelConfig
from clusterneg.outputs import atomic_write_text
from clusterneg.presets import apply_protocol
from clusterneg.report.summary import paired_compare
from clusterneg.train.config import TrainConfig

RESULTS = Path(__file__).parent / "results"
PER_USER = Path("runs/regime")
METRICS = ("hr@50", "recall@50", "ndcg@10")
BASE = "in-batch"
LATENT = "@latent"  # suffix: run the sampler on the synthetic data's true clusters


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
    ap.add_argument("--encoder", default="minilm",
                    help="item text encoder for the clusters; none: no k-means clusters (only "
                         "NAME@latent cluster samplers, on a synth folder)")
    ap.add_argument("--label", default=None,
                    help="series name and file regime_<label>.json (default: the dataset's)")
    ap.add_argument("--no-user-id", action="store_true", help="user tower without a user id")
    ap.add_argument("-o", "--option", action="append", default=[],
                    help="SAMPLER:KEY=VALUE fixed sampler option (as compare -o)")
    ap.add_argument("--plot", action="store_true", help="only draw the figure and table")
    args = ap.parse_args()
    if args.plot:
        plot_all()
        return
    torch.set_num_threads(args.threads)
    name = args.label or short_name(args.dataset)
    out = RESULTS / f"regime_{name}.json"
    doc = json.loads(out.read_text()) if out.exists() else {"rows": []}
    nc = args.n_clusters if args.n_clusters == "auto" else int(args.n_clusters)
    exp, opts = apply_protocol(args.protocol, ExperimentConfig(
        dataset=args.dataset, encoder=args.encoder, n_clusters=nc,
        valid_users=args.valid_users), {})
    for pair in args.option:
        sampler, _, rest = pair.partition(":")
        opts.setdefault(sampler, {}).update(parse_options([rest]))
    prep = prepare(exp)
    command = "PYTHONPATH=src nice .venv/bin/python bench/regime.py " + " ".join(sys.argv[1:])
    commands = doc.get("commands", [doc["command"]] if "command" in doc else [])
    doc.update(dataset=name, n_items=prep.dataset.n_items, n_users=prep.dataset.n_users,
               n_clusters=prep.n_clusters, protocol=args.protocol,
               cluster_rule=(getattr(prep.cluster_info, "meta", {}) or {}).get(
                   "auto", {}).get("reason", f"given: {nc}") if args.encoder != "none" else
               f"none (--encoder none): only the {LATENT} samplers have (the true) clusters",
               command=command, commands=commands + [command] * (command not in commands),
               user_id=not args.no_user_id)
    samplers = args.samplers.split(",")
    for b in (int(x) for x in args.batch_sizes.split(",")):
        for s in samplers:
            if any(r["batch_size"] == b and r["sampler"] == s for r in doc["rows"]):
                continue
            run_prep = with_latent_clusters(prep) if s.endswith(LATENT) else prep
            row = train_one(run_prep, s, b, opts.get(s.removesuffix(LATENT), {}), args, name)
            PER_USER.mkdir(parents=True, exist_ok=True)
            with open(PER_USER / f"{name}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # another process may have added rows
                disk = json.loads(out.read_text()) if out.exists() else {"rows": []}
                doc["rows"] = [r for r in disk["rows"] if (r["batch_size"], r["sampler"])
                               != (b, s)] + [row]
                doc["commands"] = list(dict.fromkeys([*disk.get("commands", []),
                                                      *doc["commands"]]))
                add_intervals(doc, name)
                atomic_write_text(out, json.dumps(doc, indent=1, allow_nan=False) + "\n")
            print(f"{name} B={b} {s}: hr@50 {hr50(row)} {row.get('error', '')}"
                  f"({row['train_seconds']:.0f} s, best epoch {row['best_epoch']})", flush=True)


def with_latent_clusters(prep: Any) -> Any:
    """A copy of ``prep`` whose item clusters are the synthetic generator's true ones
    (``latent_items.parquet`` beside the data), mapped onto the loader's item index."""
    import dataclasses

    import pyarrow.parquet as pq

    path = Path(prep.config.dataset) / "latent_items.parquet"
    if not path.is_file():
        raise SystemExit(f"{path}: not found; {LATENT} needs a `clusterneg data synth` folder")
    t = pq.read_table(path, columns=["item_id", "cluster"])
    truth = dict(zip(map(str, t["item_id"].to_pylist()), t["cluster"].to_pylist(), strict=True))
    cluster = np.array([truth[str(i)] for i in prep.dataset.catalog.item_ids], dtype=np.int64)
    _, cluster = np.unique(cluster, return_inverse=True)  # contiguous ids of clusters present
    return dataclasses.replace(prep, item_cluster=cluster, n_clusters=int(cluster.max()) + 1)


def train_one(prep: Any, sampler: str, batch: int, opts: dict, args: argparse.Namespace,
              name: str) -> dict[str, Any]:
    """One run of ``sampler`` (``NAME`` or ``NAME@latent``) at batch size ``batch``; its
    per-user values go to ``runs/regime/<name>_<batch>_<sampler>.npz``."""
    train_cfg = TrainConfig(sampler=sampler.removesuffix(LATENT), sampler_options=opts,
                            epochs=args.epochs, batch_size=batch, patience=args.patience,
                            threads=args.threads)
    t0 = time.perf_counter()
    try:
        res = run(prep, ModelConfig(user_id=not args.no_user_id), train_cfg)
    except Exception as exc:  # e.g. the full softmax refusing a catalog that does not fit
        return {"batch_size": batch, "sampler": sampler, "error": str(exc),
                "ratio": prep.dataset.n_items / batch, "metrics": {},
                "train_seconds": time.perf_counter() - t0, "best_epoch": -1}
    PER_USER.mkdir(parents=True, exist_ok=True)
    np.savez(PER_USER / f"{name}_{batch}_{sampler}.npz", **res.per_user)
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


MARKS = {"goobs": "o", "cluster-goobs": "s", "full": "^", "cluster-dns": "D",
         "cluster-follow": "v", "mixed": "x", "cluster-goobs" + LATENT: "*"}
READING = RESULTS / "regime_reading.md"  # hand-written reading of the figure, kept verbatim


def hr50(row: dict[str, Any]) -> str:
    """The row's HR@50, or a dash for a run that failed (its error is in the change cell)."""
    value = row["metrics"].get("hr@50")
    return "—" if value is None else f"{value:.4f}"


def change_cell(row: dict[str, Any]) -> str:
    """``+1.2% [-0.3%, +2.8%]`` (✓ when the interval excludes 0), or why there is none."""
    ch = row.get("change", {}).get("hr@50")
    if row["sampler"] == BASE:
        return "baseline"
    if ch is None:
        return row.get("error", "—")[:60]
    return (f"{ch['rel']:+.1%} [{ch['rel_ci_low']:+.1%}, {ch['rel_ci_high']:+.1%}]"
            + (" ✓" if ch["real"] else ""))


def summary_table(docs: list[dict[str, Any]]) -> list[str]:
    """One row per (dataset, batch size), sorted by N / B; one column per sampler."""
    samplers = [s for s in MARKS if any(r["sampler"] == s for d in docs for r in d["rows"])]
    cells = [(r["ratio"], d["dataset"], r["batch_size"]) for d in docs for r in d["rows"]
             if r["sampler"] == BASE]
    out = ["| catalog | B | N/B | in-batch HR@50 | " + " | ".join(samplers) + " |",
           "|:---|---:|---:|---:|" + "---:|" * len(samplers)]
    for ratio, name, b in sorted(cells):
        rows = {r["sampler"]: r for d in docs if d["dataset"] == name for r in d["rows"]
                if r["batch_size"] == b}
        out.append(f"| {name} | {b} | {ratio:.0f} | {hr50(rows[BASE])} | "
                   + " | ".join(change_cell(rows[s]) if s in rows else "" for s in samplers)
                   + " |")
    return out


def plot_all() -> None:
    """bench/results/regime.png / .svg and regime.md from every regime_*.json (one colour
    per catalog, one marker per sampler; points of one sampler joined across batch sizes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import ScalarFormatter

    docs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("regime_*.json"))]
    fig, ax = plt.subplots(figsize=(9, 5.5))
    colours = dict(zip([d["dataset"] for d in docs], plt.get_cmap("tab10").colors, strict=False))
    lines = ["# Regime study: gain over in-batch vs catalog / batch", "",
             "HR@50 change of each sampler over in-batch + logQ at the same batch size, with "
             "the paired bootstrap 95% interval over test users (✓: excludes 0). One seed per "
             "point. Figure: `regime.png` / `regime.svg` (`bench/regime.py --plot`).", "",
             *summary_table(docs), ""]
    if READING.exists():
        lines += [READING.read_text().strip(), ""]
    for doc in docs:
        lines += [f"## {doc['dataset']} ({doc['n_items']} items, {doc['n_users']} users, "
                  f"protocol {doc['protocol']}, {doc['n_clusters']} clusters)", "",
                  *(f"- `{c}`" for c in doc.get("commands", [doc["command"]])), "",
                  f"Clusters: {doc.get('cluster_rule', '')}", "",
                  "| B | N/B | sampler | HR@50 | change vs in-batch [95% CI] | best epoch | "
                  "epochs | train s |", "|---:|---:|:---|---:|---:|---:|---:|---:|"]
        for row in sorted(doc["rows"], key=lambda r: (r["batch_size"], r["sampler"])):
            lines.append(f"| {row['batch_size']} | {row['ratio']:.0f} | {row['sampler']} | "
                         f"{hr50(row)} | {change_cell(row)} | "
                         f"{row['best_epoch']} | {row.get('epochs', '')} | "
                         f"{row['train_seconds']:.0f} |")
        lines.append("")
        for k, (s, mk) in enumerate(MARKS.items()):
            pts = sorted((r["ratio"], r["change"]["hr@50"]) for r in doc["rows"]
                         if r["sampler"] == s and "hr@50" in r.get("change", {}))
            if not pts:
                continue
            x = [p[0] * 1.04 ** (k - 3) for p in pts]  # spread samplers apart on the log axis
            y = [100 * p[1]["rel"] for p in pts]
            err = [[100 * (p[1]["rel"] - p[1]["rel_ci_low"]) for p in pts],
                   [100 * (p[1]["rel_ci_high"] - p[1]["rel"]) for p in pts]]
            ax.errorbar(x, y, yerr=err, marker=mk, ms=7 if mk == "*" else 5, capsize=2,
                        lw=0.8, ls=":", alpha=0.85, color=colours[doc["dataset"]])
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlabel("catalog size / batch size (N / B), log scale")
    ax.set_ylabel("HR@50 change over in-batch + logQ (%), 95% paired CI")
    ax.set_title("Where do sampled negatives pay off? (paper protocol, one seed per point)")
    used = {r["sampler"] for d in docs for r in d["rows"]}
    plotted = {d["dataset"] for d in docs if any("change" in r for r in d["rows"])}
    handles = ([Line2D([], [], color=c, lw=2, label=n) for n, c in colours.items()
                if n in plotted]
               + [Line2D([], [], color="k", marker=m, ls="", label=s)
                  for s, m in MARKS.items() if s in used])
    ax.legend(handles=handles, fontsize=7, ncol=2, loc="best")
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(RESULTS / f"regime.{ext}", dpi=120)
    atomic_write_text(RESULTS / "regime.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
