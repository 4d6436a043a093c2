"""Does a successful ``clusterneg data stats --json`` exit 0 every time? (issue 9: pyarrow's
threaded CSV reader used to abort the interpreter at exit, SIGABRT / exit 134, in 9 of 10.)

    PYTHONPATH=src python bench/exit_codes.py [N] [DATASET]    # default 50 runs of ml-100k

Writes bench/results/exit_codes.json and .md: the exit code of every run and how many were 0.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import time
from pathlib import Path

from clusterneg.outputs import atomic_write_text

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", nargs="?", type=int, default=50, help="runs (default 50)")
    ap.add_argument("dataset", nargs="?", default="ml-100k", help="default ml-100k")
    args = ap.parse_args()
    n, dataset = args.n, args.dataset
    argv = [sys.executable, "-m", "clusterneg.cli", "data", "stats", "--json",
            "--dataset", dataset]
    codes = []
    t0 = time.perf_counter()
    for _ in range(n):
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        codes.append(proc.returncode)
    seconds = time.perf_counter() - t0
    counts = dict(collections.Counter(codes))
    out = {"command": f"clusterneg data stats --json --dataset {dataset}", "runs": n,
           "exit_0": codes.count(0), "exit_codes": counts, "seconds": round(seconds, 1)}
    res = ROOT / "bench" / "results"
    res.mkdir(parents=True, exist_ok=True)
    atomic_write_text(res / "exit_codes.json", json.dumps(out, indent=2) + "\n")
    atomic_write_text(res / "exit_codes.md", (
        f"# Exit codes of successful runs\n\n`PYTHONPATH=src python bench/exit_codes.py {n} "
        f"{dataset}`\n\n| command | runs | exit 0 | exit codes seen |\n|---|---|---|---|\n"
        f"| `{out['command']}` | {n} | {out['exit_0']} | {counts} |\n"))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
