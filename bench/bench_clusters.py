"""Cluster diagnostics over a range of cluster counts, on both datasets and both encoders.

For each (dataset, encoder): embed the catalog (cached), then for k in --ks fit seeded
spherical k-means (clusters under 5 items merged, as ``embed_and_cluster`` does) and record
sizes, the false-negative rate (in-cluster vs random, on the training part of the default
split), the content hardness (cosine of positive and in-cluster negative minus that of a
random negative) and NMI / purity against the category labels (ml-100k: first genre; Amazon:
level 1 of the category path). Then the ``auto`` rule's scan and choice. For the decoder LLM it
also records the anisotropy (mean cosine of random item pairs) raw, centred and whitened.

Run: PYTHONPATH=src .venv/bin/python bench/bench_clusters.py [--encoders minilm smollm2]
Writes bench/results/clusters.json and bench/results/clusters.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from clusterneg.cluster import Clusterer, choose_n_clusters, diagnose
from clusterneg.cluster.pipeline import category_level_for, training_matrix
from clusterneg.data import load_dataset
from clusterneg.encode import Postprocess, anisotropy, build_encoder, embed_catalog
from clusterneg.outputs import atomic_write_text

OUT = Path(__file__).resolve().parent / "results"
DATASETS = ("ml-100k", "/work/shared/data/amazon-office")


def sweep(ds: Any, emb: np.ndarray, ks: list[int], seed: int) -> list[dict[str, Any]]:
    """Diagnostics for each k."""
    ui = training_matrix(ds, None, seed)
    level = category_level_for(ds)
    rows = []
    for k in ks:
        km = Clusterer(k, seed=seed)
        ids = km.fit_assign(emb, 5)
        d = diagnose(ids, km.n_clusters, user_items=ui, emb=emb,
                     categories=ds.catalog.categories(), category_level=level)
        s, fn, ch, cat = (d["sizes"], d["false_negatives"], d["content_hardness"],
                          d["categories"])
        rows.append({"k": k, "k_final": km.n_clusters, "size_min": s["min"],
                     "size_median": s["median"], "size_max": s["max"],
                     "fn_in_cluster": fn["in_cluster"], "fn_random": fn["random"],
                     "fn_lift": fn["lift"], "content_in_cluster": ch["in_cluster"],
                     "content_random": ch["random"], "content_hardness": ch["hardness"],
                     "nmi": cat["nmi"], "purity": cat["purity"], "category_level": level})
    return rows


def run(spec: str, encoder: str, ks: list[int], seed: int) -> dict[str, Any]:
    ds = load_dataset(spec)
    enc = build_encoder(encoder)
    start = time.perf_counter()
    raw = embed_catalog(ds.catalog, enc, postprocess="none", normalize=False)
    out: dict[str, Any] = {"dataset": ds.name, "encoder": encoder, "model_id": enc.model_id,
                           "embed_seconds": time.perf_counter() - start,
                           "cache": raw.info["cache"], "template": raw.info.get("template")}
    out["anisotropy"] = {kind: anisotropy(Postprocess(kind).fit(raw.vectors)
                                          .transform(raw.vectors))
                         for kind in ("none", "center", "whiten")}
    post = enc.default_postprocess
    emb = embed_catalog(ds.catalog, enc, postprocess=post).vectors
    out["postprocess"] = post
    out["sweep"] = sweep(ds, emb, ks, seed)
    choice = choose_n_clusters(emb, training_matrix(ds, None, seed), seed=seed)
    out["auto"] = {"chosen": choice.n_clusters, "rule": choice.rule, "table": choice.table}
    print(json.dumps({k: v for k, v in out.items() if k != "auto"}, indent=None), flush=True)
    return out


def markdown(results: list[dict[str, Any]], argv: str) -> str:
    lines = ["# Cluster diagnostics over k", "",
             f"`PYTHONPATH=src .venv/bin/python bench/bench_clusters.py{argv}`", "",
             "Spherical k-means (faiss, seed 0, 25 iterations), clusters under 5 items merged "
             "into their nearest neighbour (k final). FN = chance that a negative drawn for a "
             "training pair (u, i) is another training positive of u: in-cluster (uniform in "
             "i's cluster) vs random (uniform over all items), and their ratio (lift). Content "
             "hardness = mean cos(positive, in-cluster negative) - mean cos(positive, random "
             "negative). NMI / purity against ml-100k's first genre or Amazon's level-1 "
             "category. Training part of the default split (leave-last-out, seed 0).", ""]
    for r in results:
        an = r["anisotropy"]
        lines += [f"## {r['dataset']} / {r['encoder']} (postprocess: {r['postprocess']})", "",
                  f"`{r['model_id']}`, template {r['template']}; embedding took "
                  f"{r['embed_seconds']:.1f} s (cache: {r['cache']}). Mean cosine of random "
                  f"item pairs: raw {an['none']:.3f}, centred {an['center']:.3f}, whitened "
                  f"{an['whiten']:.3f}.", "",
                  "| k | k final | size min / median / max | FN in-cluster | FN random | "
                  "FN lift | cos in-cluster | cos random | content hardness | NMI | purity |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in r["sweep"]:
            lines.append(
                f"| {s['k']} | {s['k_final']} | {s['size_min']} / {s['size_median']:g} / "
                f"{s['size_max']} | {s['fn_in_cluster']:.4f} | {s['fn_random']:.4f} | "
                f"{s['fn_lift']:.2f} | {s['content_in_cluster']:.3f} | "
                f"{s['content_random']:.3f} | {s['content_hardness']:.3f} | {s['nmi']:.3f} | "
                f"{s['purity']:.3f} |")
        a = r["auto"]
        lines += ["", f"**auto** (FN lift <= {a['rule']['max_fn_lift']}, median size >= "
                  f"{a['rule']['min_median_size']}, hardest admissible): candidates "
                  + ", ".join(f"{t['k']}{'*' if t['k'] == a['chosen'] else ''}"
                              f" (lift {t['fn_lift']:.2f}, median {t['median_size']:g}"
                              f"{'' if t['admissible'] else ', rejected'})"
                              for t in a["table"])
                  + f" -> **k = {a['chosen']}**.", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoders", nargs="+", default=["minilm", "smollm2"])
    ap.add_argument("--ks", nargs="+", type=int, default=[5, 10, 20, 50, 100, 200])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    results = [run(spec, enc, args.ks, args.seed) for enc in args.encoders for spec in DATASETS]
    OUT.mkdir(exist_ok=True)
    meta = {"load_avg_end": os.getloadavg()[0], "argv": sys.argv[1:]}
    atomic_write_text(OUT / "clusters.json",
                      json.dumps({"meta": meta, "results": results}, indent=1))
    argv = "".join(f" {a}" for a in sys.argv[1:])
    atomic_write_text(OUT / "clusters.md", markdown(results, argv))


if __name__ == "__main__":
    main()
