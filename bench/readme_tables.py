"""Rewrite the README's benchmark section from the committed result files.

    PYTHONPATH=src .venv/bin/python bench/readme_tables.py

Reads bench/results/compare/*/results.json and bench/results/baselines_*.json and replaces
the text between ``<!-- bench:start -->`` and ``<!-- bench:end -->`` in README.md, so every
number in the README comes from a file a bench command wrote.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from clusterneg.model import ModelConfig
from clusterneg.outputs import atomic_write_text
from clusterneg.train.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ORDER = ["in-batch", "mixed", "cross-batch", "dns", "ance", "goobs", "cluster-goobs",
         "cluster-dns", "cluster-follow", "full"]
DEFAULT_LR = TrainConfig.lr  # a comparison at another learning rate says so
DEFAULT_BATCH = TrainConfig.batch_size
DEFAULT_TEMPERATURE = ModelConfig.temperature
# the comparisons the README shows, in this order (the other result folders are probes and
# timings that bench/README.md discusses)
COMPARE_DIRS = ["amazon-3cat-paper-budget4", "amazon-3cat-paper-t01-ablation",
                "amazon-3cat-3seed-content", "amazon-3cat-content-cached-3seed",
                "amazon-3cat-content-cs-3seed", "amazon-3cat-paper-4way-3seed",
                "amazon-3cat-paper-cached-3seed", "amazon-3cat-adam-lr5-3seed",
                "amazon-3cat-lazy-lr5-3seed",
                "amazon-3cat-fast-lr5-3seed", "amazon-office", "amazon-office-b32-3seed",
                "amazon-office-b32-budget4", "amazon-office-b32-mask-ablation",
                "ml-100k"]


def compare_table(path: Path) -> str:
    res = json.loads(path.read_text())
    summ = res["summary"]
    base = summ["in-batch"]["hr@50"]["mean"]
    n_seeds = len({r["seed"] for r in res["runs"]})
    # the run's own record says whether the item tower saw the content embedding
    towers = "" if res["experiment"].get("use_content", True) else " ID-only towers,"
    train = res["runs"][0]["config"]["train"]
    # every run's own setting: a tuning budget gives each sampler its own lr and temperature
    settings = {(r["config"]["train"]["lr"], r["config"]["model"]["temperature"])
                for r in res["runs"]}
    optimizer = "lazy Adam" if train.get("optimizer") == "lazy-adam" else "Adam"
    if len(settings) > 1:
        towers += f" {optimizer}, lr and temperature tuned per sampler on validation,"
    else:
        ((lr, temperature),) = settings
        if train.get("optimizer", "adam") != "adam" or lr != DEFAULT_LR:
            towers += f" {optimizer} lr {lr:g},"
        if temperature != DEFAULT_TEMPERATURE:
            towers += f" T {temperature:g},"
    if train["batch_size"] != DEFAULT_BATCH:  # the catalog / batch ratio is the regime
        towers += f" batch {train['batch_size']} (N/B {res['n_items'] / train['batch_size']:.0f}),"
    lines = [f"**{res['dataset']}** ({res['split']} split,{towers} {res['n_users']} users, "
             f"{res['n_items']} items, {n_seeds} seeds; `{path.parent.relative_to(ROOT)}`)", "",
             "| sampler | HR@50 | vs in-batch | HR@100 | NDCG@10 | top100 share | coverage@50 "
             "| examples/s |", "|---|---|---|---|---|---|---|---|"]
    options = {r["sampler"]: r["config"]["train"].get("sampler_options", {})
               for r in res["runs"]}
    # a labelled spec (goobs@cs) after its sampler, in the order given
    specs = sorted((x for x in summ if x.partition("@")[0] in ORDER),
                   key=lambda x: (ORDER.index(x.partition("@")[0]), "@" in x))
    for s in specs:
        m = summ[s]
        rel = m["hr@50"]["mean"] / base - 1
        notes = [text for key, text in (("cached_vectors", "cached vectors"),
                                         ("shared", "random negatives shared by the batch"))
                 if options.get(s, {}).get(key)]
        label = f"{s} ({', '.join(notes)})" if notes else s
        lines.append(
            f"| {label} | {m['hr@50']['mean']:.4f} ± {m['hr@50']['std']:.4f} | {rel:+.1%} | "
            f"{m['hr@100']['mean']:.4f} | {m['ndcg@10']['mean']:.4f} | "
            f"{m['top100_share']['mean']:.3f} | {m['coverage@50']['mean']:.3f} | "
            f"{m['examples_per_s']['mean']:,.0f} |")
    return "\n".join(lines)


def baseline_table(path: Path) -> str:
    res = json.loads(path.read_text())
    head = ("recall@50", "ndcg@10", "hr@50")
    lines = [f"**{res['dataset']}**, {res['split']} split (`{path.relative_to(ROOT)}`)", "",
             "| model | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for r in res["models"]:
        lines.append(f"| {r['model']} | " + " | ".join(f"{r['test'][k]:.4f}" for k in head)
                     + " |")
    return "\n".join(lines)


def main() -> None:
    parts = ["### Does cluster-goobs help? (`clusterneg compare`)", ""]
    for name in COMPARE_DIRS:
        parts += [compare_table(RESULTS / "compare" / name / "results.json"), ""]
    parts += ["examples/s is what each run recorded on the shared 2-core machine, whatever else "
              "ran beside it (other runs of the comparison included); the speed measurement is "
              "`bench/bench_speed.py` (samplers interleaved in one process).", "",
              "Commands, the verdict and the analysis of why: [bench/README.md]"
              "(bench/README.md).", "", "### Is the baseline strong? (`bench/baselines.py`)", ""]
    for p in sorted(RESULTS.glob("baselines_*.json")):
        parts += [baseline_table(p), ""]
    text = "\n".join(parts).rstrip() + "\n"
    readme = ROOT / "README.md"
    src = readme.read_text()
    new = re.sub(r"<!-- bench:start -->.*<!-- bench:end -->",
                 lambda _: f"<!-- bench:start -->\n{text}<!-- bench:end -->", src, flags=re.S)
    atomic_write_text(readme, new)


if __name__ == "__main__":
    main()
