"""One table from several ``bench_speed.py`` runs: CPU ms per step and the ratio to in-batch
measured within each run, before/after pairs side by side.

Run: PYTHONPATH=src python bench/speed_summary.py OUT_TAG BEFORE_TAG:AFTER_TAG [TAG ...]
(e.g. ``s3 s3before_content:s3_content s3before_id:s3_id s3_id16``); reads
``bench/results/speed_<tag>.json``, writes ``bench/results/speed_<OUT_TAG>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from clusterneg.outputs import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"


def load(tag: str) -> dict:
    return json.loads((RESULTS / f"speed_{tag}.json").read_text())


def rows(before: dict | None, after: dict) -> list[str]:
    towers = "ID-only" if after.get("towers") == "id" else "content"
    k = after["extra_negatives_per_example"]
    out = []
    tp = after["throughput"]
    for i, name in enumerate(tp["step_ms_median"]):
        head = f"{towers}, {k} (1:{k - 1})" if i == 0 else ""
        cells = ["", ""]
        if before is not None:
            b = before["throughput"]
            cells = [f"{b['step_ms_median'][name]:.1f}", f"{b['ratio_to_in_batch'][name]:.3f}"]
        ms, ratio = tp["step_ms_median"][name], tp["ratio_to_in_batch"][name]
        gain = (f"{before['throughput']['step_ms_median'][name] / ms:.2f}x"
                if before is not None else "")
        out.append(f"| {head} | {name} | {cells[0]} | {cells[1]} | {ms:.1f} | {ratio:.3f} | "
                   f"{gain} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_tag", help="writes bench/results/speed_<OUT_TAG>.{json,md}")
    ap.add_argument("specs", nargs="+", metavar="[BEFORE_TAG:]AFTER_TAG",
                    help="bench_speed.py tags (bench/results/speed_<tag>.json)")
    args = ap.parse_args()
    out_tag, specs = args.out_tag, args.specs
    for spec in specs:
        for tag in spec.rpartition(":")[::2]:
            if tag and not (RESULTS / f"speed_{tag}.json").is_file():
                ap.error(f"{RESULTS / f'speed_{tag}.json'}: no such bench_speed.py result")
    runs, lines = {}, [
        "# Training speed on amazon-3cat: per-example negatives vs in-batch", "",
        "CPU ms per step (median, one thread) and examples/s relative to in-batch **within "
        "the same interleaved run**; before = the code at 7405495 (its runs had "
        "PYTHONPATH=<`git archive 7405495 src`>), after = this branch; the runs were made "
        "within minutes of each other at a similar load (in each command's line). "
        "Commands:", ""]
    table = ["| towers, negatives per example | sampler | before: ms | x in-batch | "
             "after: ms | x in-batch | speed-up |", "|---|---|---|---|---|---|---|"]
    for spec in specs:
        before_tag, _, after_tag = spec.rpartition(":")
        before = load(before_tag) if before_tag else None
        after = load(after_tag)
        runs[spec] = {"before": before_tag or None, "after": after_tag,
                      "before_throughput": before["throughput"] if before else None,
                      "after_throughput": after["throughput"],
                      "load_avg": [(before or after)["load_avg_start"], after["load_avg_end"]]}
        for r in (before, after):
            if r is not None:
                lines.append(f"- `{r['command']}` (load average {r['load_avg_start'][0]:.1f})")
        table += rows(before, after)
    lines += ["", *table]
    atomic_write_text(RESULTS / f"speed_{out_tag}.json", json.dumps(runs, indent=2) + "\n")
    atomic_write_text(RESULTS / f"speed_{out_tag}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
