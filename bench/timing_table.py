"""A timed comparison against earlier ones (issue 12: the amazon-3cat comparison in under 15
minutes, same metrics). Reads a ``compare`` output's ``results.json``, the ``/usr/bin/time -v``
file of the same command, and the ``results.json`` of the comparisons to hold it against; writes
``OUT.json`` and ``OUT.md`` (the commands, the wall time, and each sampler's seed-0 HR@50 beside
the others' with the relative change).

    PYTHONPATH=src python bench/timing_table.py \
        --run bench/results/compare/amazon-3cat-fast-lr5-seed0 \
        --time bench/results/a3_timing_s12_time.txt \
        --against defaults=bench/results/compare/amazon-3cat-timing-s8 \
        --against adam-lr5=bench/results/compare/amazon-3cat-adam-lr5 \
        --out bench/results/a3_timing_s12
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
from pathlib import Path
from typing import Any

from clusterneg.outputs import atomic_write_text

METRICS = ("hr@50", "ndcg@10")


def read_time(path: Path) -> dict[str, float]:
    """Wall, user and system seconds and peak RSS (kB) from ``/usr/bin/time -v`` output."""
    text = path.read_text(encoding="utf-8")

    def field(name: str) -> str:
        m = re.search(rf"{re.escape(name)}:\s*(\S+)", text)
        if m is None:
            raise SystemExit(f"{path}: no '{name}' line (expected /usr/bin/time -v output)")
        return m.group(1)

    parts = [float(x) for x in field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")]
    wall = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    return {"wall_seconds": wall, "user_seconds": float(field("User time (seconds)")),
            "system_seconds": float(field("System time (seconds)")),
            "peak_rss_kb_largest_process": float(field("Maximum resident set size (kbytes)"))}


def seed0(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each sampler's seed-0 run: metrics, top-100 share, epochs and seconds."""
    out = {}
    for row in results["runs"]:
        if row["seed"] != 0:
            continue
        t = row["train"]
        out[row["sampler"]] = {
            **{m: row["metrics"][m] for m in METRICS},
            "top100_share": row["exposure"]["top100_share"],
            "epochs": t["epochs"], "best_epoch": t["best_epoch"],
            "train_seconds": t["train_seconds"],
            "validation_and_test_seconds": t["seconds"] - t["train_seconds"]}
    return out


def command(results: dict[str, Any]) -> str:
    return shlex.join(results.get("provenance", {}).get("argv", []))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="the timed compare output")
    ap.add_argument("--time", type=Path, required=True, help="its /usr/bin/time -v output")
    ap.add_argument("--against", action="append", default=[], metavar="LABEL=DIR")
    ap.add_argument("--note", default="", help="what else ran on the machine")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    run = json.loads((args.run / "results.json").read_text(encoding="utf-8"))
    record: dict[str, Any] = {"command": command(run), "machine": args.note,
                              **read_time(args.time), "runs": seed0(run), "against": {}}
    for spec in args.against:
        label, _, path = spec.partition("=")
        other = json.loads((Path(path) / "results.json").read_text(encoding="utf-8"))
        record["against"][label] = {"command": command(other), "source": path,
                                    "runs": seed0(other)}
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(record, indent=1) + "\n")

    labels = list(record["against"])
    lines = [f"# Timed comparison: {args.run.name}", "",
             f"Command: `{record['command']}`", "",
             f"**Wall time {record['wall_seconds'] / 60:.1f} min** (user "
             f"{record['user_seconds']:.0f} s, peak RSS of the largest process "
             f"{record['peak_rss_kb_largest_process'] / 1e6:.1f} GB). {args.note}", ""]
    for label in labels:
        lines.append(f"- {label}: `{record['against'][label]['command']}` "
                     f"({record['against'][label]['source']})")
    head = ["sampler", "HR@50", *[f"HR@50 {lab}" for lab in labels], "NDCG@10",
            "top-100 share", "epochs (best)", "training s", "validation + test s"]
    lines += ["", "| " + " | ".join(head) + " |", "|:---|" + "---:|" * (len(head) - 1)]
    for sampler, r in record["runs"].items():
        cells = [sampler, f"{r['hr@50']:.4f}"]
        for label in labels:
            o = record["against"][label]["runs"].get(sampler)
            cells.append("-" if o is None else
                         f"{o['hr@50']:.4f} ({(r['hr@50'] / o['hr@50'] - 1) * 100:+.1f}%)")
        cells += [f"{r['ndcg@10']:.4f}", f"{r['top100_share'] * 100:.1f}%",
                  f"{r['epochs']} ({r['best_epoch']})", f"{r['train_seconds']:.0f}",
                  f"{r['validation_and_test_seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "The change in brackets is this run's HR@50 relative to the other's "
              "(one seed each)."]
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
