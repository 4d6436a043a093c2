"""Concept clusters vs plain k-means at the same number of clusters (issue 11, item 7).

Coarse k-means (``--coarse`` clusters) is split by SmolLM2 into LLM-named concepts
(:mod:`clusterneg.cluster.concepts`, at most ``--max-concepts`` per cluster); plain k-means is
fit with the number of concepts that came out. Both are compared on (a) the cluster
diagnostics (false-negative rate and lift, content hardness, category NMI, sizes) and (b) a
short cluster-goobs run each (one seed, the same split, validation sample and protocol),
HR@50 / NDCG@10 on the test split with paired bootstrap 95% intervals over users: concept vs
k-means, and each vs in-batch. Writes ``bench/results/concepts.{json,md}``; per-user arrays go
to ``runs/concepts/`` (not committed).

    PYTHONPATH=src nice .venv/bin/python bench/concepts.py \
        --dataset ../shared/data/amazon-office --coarse 16 --max-concepts 4 \
        --batch-size 64 --epochs 8 --patience 2 --protocol paper --threads 1
    # the same with another training seed, then both seeds averaged per user
    PYTHONPATH=src nice .venv/bin/python bench/concepts.py ... --seed 1 --tag seed1
    PYTHONPATH=src .venv/bin/python bench/concepts.py --pool ,seed1
    # a larger cluster share, reusing the in-batch run: --ratio 8:24 --tag ratio8-24
    # --reuse-in-batch
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clusterneg.cluster import embed_and_cluster
from clusterneg.cluster.concepts import ConceptOptions, concept_clusters
from clusterneg.experiment import ExperimentConfig, prepare, run
from clusterneg.model import ModelConfig
from clusterneg.outputs import atomic_write_text
from clusterneg.presets import apply_protocol
from clusterneg.report.summary import paired_compare
from clusterneg.train.config import TrainConfig

RESULTS = Path(__file__).parent / "results"
PER_USER = Path("runs/concepts")
METRICS = ("hr@50", "ndcg@10")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="../shared/data/amazon-office")
    ap.add_argument("--coarse", type=int, default=16)
    ap.add_argument("--max-concepts", type=int, default=4)
    ap.add_argument("--titles", type=int, default=12)
    ap.add_argument("--protocol", default="paper")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--patience", type=int, default=2)
    ap.add_argument("--valid-users", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0, help="training seed (the split, the "
                    "clusters and the validation sample keep seed 0)")
    ap.add_argument("--no-train", action="store_true", help="diagnostics only")
    ap.add_argument("--ratio", default=None, help="cluster:random of cluster-goobs (default: "
                    "the protocol's)")
    ap.add_argument("--tag", default="", help="results go to concepts_TAG.{json,md}")
    ap.add_argument("--reuse-in-batch", action="store_true", help="take the in-batch run "
                    "from concepts.json (same data, split, batch, seed: ratio-independent)")
    ap.add_argument("--pool", default=None, help="only pool finished runs: comma-separated "
                    "tags of runs with the same settings but another --seed ('' = untagged); "
                    "per-user metrics are averaged over them")
    args = ap.parse_args()
    if args.pool is not None:
        pool(args.pool.split(","))
        return
    torch.set_num_threads(args.threads)
    doc: dict[str, Any] = {"command": "PYTHONPATH=src nice .venv/bin/python bench/concepts.py "
                           + " ".join(sys.argv[1:])}
    exp, sampler_opts = apply_protocol(args.protocol, ExperimentConfig(
        dataset=args.dataset, n_clusters=args.coarse, valid_users=args.valid_users),
        {"cluster-goobs": {"ratio": args.ratio}} if args.ratio else {})
    prep = prepare(exp)
    coarse = prep.cluster_info
    t0 = time.perf_counter()
    concept = concept_clusters(
        prep.dataset, prep.content, coarse, encoder_spec=exp.encoder,
        options=ConceptOptions(args.max_concepts, args.titles, seed=exp.split_seed),
        user_items=prep.train_items.to_scipy(), cache_dir=exp.cache_dir)
    concept_s = time.perf_counter() - t0
    plain = kmeans_with_k(prep, exp, concept.n_clusters)
    info = concept.meta["concepts"]
    doc.update(dataset=Path(args.dataset).name, n_items=prep.dataset.n_items,
               protocol=args.protocol, batch_size=args.batch_size, train_seed=args.seed,
               concept_seconds=concept_s,
               concepts={k: v for k, v in info.items() if k != "per_cluster"},
               per_cluster=info["per_cluster"],
               diagnostics={"coarse k-means": summary(coarse), "concepts": summary(concept),
                            "k-means same k": summary(plain)})
    print(json.dumps(doc["diagnostics"], indent=1), flush=True)
    rows: dict[str, Any] = {}
    reuse = args.reuse_in_batch
    if not args.no_train:
        variants = (("in-batch", "in-batch", plain), ("cluster-goobs k-means", "cluster-goobs",
                    plain), ("cluster-goobs concepts", "cluster-goobs", concept))
        for label, sampler, clusters in variants:
            if label == "in-batch" and args.reuse_in_batch:
                rows[label] = json.loads((RESULTS / "concepts.json").read_text())["runs"][label]
                continue
            rows[label] = train_one(prep, clusters, tagged(label, args.tag, reuse), sampler,
                                    sampler_opts.get(sampler, {}), args)
            print(label, rows[label]["metrics"], flush=True)
        doc["runs"] = rows
        doc["paired"] = {
            f"{b} vs {a}": change(tagged(a, args.tag, reuse), tagged(b, args.tag, reuse))
            for a, b in (
                ("cluster-goobs k-means", "cluster-goobs concepts"),
                ("in-batch", "cluster-goobs k-means"), ("in-batch", "cluster-goobs concepts"))}
    stem = f"concepts_{args.tag}" if args.tag else "concepts"
    atomic_write_text(RESULTS / f"{stem}.json", json.dumps(doc, indent=1, allow_nan=False) + "\n")
    atomic_write_text(RESULTS / f"{stem}.md", markdown(doc))


def pool(tags: list[str]) -> None:
    """Seed-averaged paired changes over the runs tagged ``tags`` ->
    ``concepts_pooled.{json,md}``."""
    labels = ("in-batch", "cluster-goobs k-means", "cluster-goobs concepts")
    runs = {lab: [dict(np.load(PER_USER / f"{tagged(lab, t, False).replace(' ', '_')}.npz"))
                  for t in tags] for lab in labels}
    doc: dict[str, Any] = {
        "command": "PYTHONPATH=src nice .venv/bin/python bench/concepts.py "
                   + " ".join(sys.argv[1:]), "tags": tags, "paired": {}}
    for a, b in ((labels[1], labels[2]), (labels[0], labels[1]), (labels[0], labels[2])):
        doc["paired"][f"{b} vs {a}"] = {}
        for m in METRICS:
            t = paired_compare(runs[a], runs[b], m, n_boot=1000, seed=0)
            doc["paired"][f"{b} vs {a}"][m] = {
                "base_mean": t["base_mean"], "rel": t["mean_diff"] / t["base_mean"],
                "rel_ci_low": t["rel_ci_low"], "rel_ci_high": t["rel_ci_high"],
                "real": bool(t["real"])}
    lines = [f"# Concepts vs k-means, per-user metrics averaged over {len(tags)} training seeds",
             "", f"`{doc['command']}`", "", "| paired change | HR@50 [95% CI] | NDCG@10 [95% CI] |",
             "|:---|---:|---:|"]
    for name, ch in doc["paired"].items():
        cells = [f"{v['rel']:+.1%} [{v['rel_ci_low']:+.1%}, {v['rel_ci_high']:+.1%}]"
                 for v in (ch[m] for m in METRICS)]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    atomic_write_text(RESULTS / "concepts_pooled.json", json.dumps(doc, indent=1) + "\n")
    atomic_write_text(RESULTS / "concepts_pooled.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


def tagged(label: str, tag: str, reuse: bool = True) -> str:
    """The per-user file stem of a run (in-batch does not depend on the cluster options)."""
    return label if not tag or (label == "in-batch" and reuse) else f"{label} {tag}"


def kmeans_with_k(prep: Any, exp: Any, target: int) -> Any:
    """Plain k-means that ends with ``target`` clusters after its small-cluster merge (the
    requested k is raised until it does; the closest result otherwise)."""
    best = None
    for k in range(target, target + 10):
        _, res = embed_and_cluster(prep.dataset, exp.encoder, k, seed=exp.split_seed,
                                   cache_dir=exp.cache_dir, user_items=prep.train_items)
        if best is None or abs(res.n_clusters - target) < abs(best.n_clusters - target):
            best = res
        if res.n_clusters >= target:
            break
    return best


def summary(result: Any) -> dict[str, Any]:
    """The diagnostics that decide whether clusters make good negatives."""
    d = result.diagnostics
    s, fn = d["sizes"], d["false_negatives"]
    return {"k": result.n_clusters, "size_min": s["min"], "size_median": s["median"],
            "size_max": s["max"], "largest_share": s["largest_share"],
            "fn_in_cluster": fn["in_cluster"], "fn_random": fn["random"], "fn_lift": fn["lift"],
            "content_hardness": d["content_hardness"]["hardness"],
            "content_in_cluster": d["content_hardness"]["in_cluster"],
            "category_nmi": d.get("categories", {}).get("nmi"),
            "category_purity": d.get("categories", {}).get("purity")}


def train_one(prep: Any, clusters: Any, label: str, sampler: str, opts: dict[str, Any],
              args: argparse.Namespace) -> dict[str, Any]:
    """One run of ``sampler`` with ``clusters``; per-user metrics saved for the intervals."""
    prep.item_cluster = np.asarray(clusters.item_cluster, np.int64)
    prep.n_clusters, prep.cluster_info = clusters.n_clusters, clusters
    cfg = TrainConfig(sampler=sampler, sampler_options=opts, epochs=args.epochs,
                      batch_size=args.batch_size, patience=args.patience, threads=args.threads,
                      seed=args.seed)
    res = run(prep, ModelConfig(), cfg)
    PER_USER.mkdir(parents=True, exist_ok=True)
    np.savez(PER_USER / f"{label.replace(' ', '_')}.npz", **res.per_user)
    return {"sampler": sampler, "n_clusters": clusters.n_clusters,
            "options": res.config["sampler"]["options"],
            "metrics": {k: res.metrics[k] for k in (*METRICS, "hr@100")},
            "top100_share": res.exposure.get("top100_share"),
            "train_seconds": res.train["train_seconds"], "best_epoch": res.train["best_epoch"],
            "epochs": res.train["epochs"]}


def change(base: str, other: str) -> dict[str, Any]:
    """Paired relative change of ``other`` over ``base`` with its bootstrap 95% interval."""
    a = dict(np.load(PER_USER / f"{base.replace(' ', '_')}.npz"))
    b = dict(np.load(PER_USER / f"{other.replace(' ', '_')}.npz"))
    out = {}
    for m in METRICS:
        t = paired_compare([a], [b], m, n_boot=1000, seed=0)
        out[m] = {"rel": t["mean_diff"] / t["base_mean"], "rel_ci_low": t["rel_ci_low"],
                  "rel_ci_high": t["rel_ci_high"], "real": bool(t["real"])}
    return out


def markdown(doc: dict[str, Any]) -> str:
    c = doc["concepts"]
    lines = [f"# Concept clusters vs k-means at the same k ({doc['dataset']}, "
             f"{doc['n_items']} items)", "", f"`{doc['command']}`", "",
             f"Coarse k-means k={c['coarse_n_clusters']} -> {c['n_concepts']} concepts "
             f"(at most {c['max_concepts']} per cluster, {c['titles_per_cluster']} titles "
             f"labelled per cluster, min concept size {c['min_concept_size']}): "
             f"{c['n_split']} clusters split, {c['n_fallback']} kept whole for lack of labels, "
             f"{c['n_merged_whole']} merged back to one concept. LLM: {c['generator']}, "
             f"{c['prompts']} prompts ({c['generated']} generated, {c['cached']} cached), "
             f"{doc['concept_seconds']:.0f} s for the concept step. Online agreement (nearest "
             f"concept centroid = own concept): {c['online_agreement']:.3f}.", "",
             "## Cluster diagnostics", "",
             "| clusters | k | size min / median / max | FN in-cluster | FN lift | "
             "content hardness | category NMI |", "|:---|---:|---:|---:|---:|---:|---:|"]
    for name, d in doc["diagnostics"].items():
        nmi = "-" if d["category_nmi"] is None else f"{d['category_nmi']:.3f}"
        lines.append(f"| {name} | {d['k']} | {d['size_min']} / {d['size_median']:g} / "
                     f"{d['size_max']} | {d['fn_in_cluster']:.4f} | {d['fn_lift']:.2f} | "
                     f"{d['content_hardness']:.3f} | {nmi} |")
    if "runs" in doc:
        opts = doc["runs"]["cluster-goobs k-means"]["options"]
        lines += ["", f"## Training (protocol {doc['protocol']}, batch {doc['batch_size']}, "
                  f"cluster-goobs {opts.get('n_cluster')} cluster + {opts.get('n_random')} "
                  f"random negatives, training seed {doc.get('train_seed', 0)})", "",
                  "| run | k | HR@50 | NDCG@10 | top-100 share | best epoch | train s |",
                  "|:---|---:|---:|---:|---:|---:|---:|"]
        for name, r in doc["runs"].items():
            m = r["metrics"]
            k = r["n_clusters"] if r["sampler"].startswith("cluster") else "-"
            lines.append(f"| {name} | {k} | {m['hr@50']:.4f} | "
                         f"{m['ndcg@10']:.4f} | {r['top100_share']:.3f} | {r['best_epoch']} | "
                         f"{r['train_seconds']:.0f} |")
        lines += ["", "| paired change | HR@50 [95% CI] | NDCG@10 [95% CI] |", "|:---|---:|---:|"]
        for name, ch in doc["paired"].items():
            cells = [f"{v['rel']:+.1%} [{v['rel_ci_low']:+.1%}, {v['rel_ci_high']:+.1%}]"
                     for v in (ch[m] for m in METRICS)]
            lines.append(f"| {name} | {' | '.join(cells)} |")
    lines += ["", "## Concepts per coarse cluster", "", "| coarse | size | status | concepts "
              "(sizes) |", "|---:|---:|:---|:---|"]
    for s in doc["per_cluster"]:
        cs = "; ".join(f"{n} ({z})" for n, z in zip(s["concepts"], s["sizes"], strict=True))
        lines.append(f"| {s['coarse']} | {s['size']} | {s['status']} | {cs} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
