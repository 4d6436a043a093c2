"""How long does the command line take to answer before it does any work?

Times ``clusterneg --version``, ``--help`` and ``data stats`` on a small generated CSV table
(wall seconds, median of N runs each, a fresh interpreter every time) for the code on
PYTHONPATH, and records whether torch was imported. Run it on two checkouts to compare:

    PYTHONPATH=src .venv/bin/python bench/cli_start.py --tag cli_start_after
    PYTHONPATH=<worktree of 6a3854a>/src .venv/bin/python bench/cli_start.py \
        --tag cli_start_before

Writes ``bench/results/<tag>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from clusterneg.outputs import atomic_write_text

OUT = Path(__file__).resolve().parent / "results"
PROBE = ("import sys, runpy\nsys.argv = ['clusterneg'] + sys.argv[1:]\n"
         "try:\n    runpy.run_module('clusterneg.cli', run_name='__main__')\n"
         "except SystemExit:\n    pass\n"
         "print('torch loaded:', 'torch' in sys.modules, file=sys.stderr)\n")


def _table(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    rows = ["user_id,item_id,timestamp"] + [f"u{u},i{(u * 7 + k) % 50},{k}"
                                            for u in range(60) for k in range(10)]
    (path / "interactions.csv").write_text("\n".join(rows) + "\n")
    return path


def time_command(args: list[str], runs: int) -> dict:
    """Median wall seconds of ``clusterneg ARGS`` over ``runs`` fresh interpreters."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    walls, torch_loaded = [], set()
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", PROBE, *args], env=env,
                              capture_output=True, text=True, timeout=300)
        walls.append(time.perf_counter() - t0)
        torch_loaded.add("torch loaded: True" in proc.stderr)
    return {"args": args, "median_s": statistics.median(walls), "min_s": min(walls),
            "torch_loaded": sorted(torch_loaded)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tag", required=True)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = _table(Path(tmp) / "data")
        cases = {"--version": ["--version"], "--help": ["--help"],
                 "data stats": ["data", "stats", "--dataset", str(data)]}
        res = {name: time_command(a, args.runs) for name, a in cases.items()}
    doc = {"command": f"bench/cli_start.py --tag {args.tag} --runs {args.runs}",
           "pythonpath": os.environ.get("PYTHONPATH", ""), "load_avg": os.getloadavg(),
           "results": res}
    lines = [f"# Command-line start ({args.tag})", "", f"`PYTHONPATH={doc['pythonpath']} "
             f"python {doc['command']}`; load average {doc['load_avg'][0]:.2f}", "",
             "| command | median s | min s | torch imported |", "|---|---|---|---|"]
    lines += [f"| `clusterneg {n}` | {r['median_s']:.2f} | {r['min_s']:.2f} | "
              f"{'/'.join(str(t) for t in r['torch_loaded'])} |" for n, r in res.items()]
    atomic_write_text(OUT / f"{args.tag}.json", json.dumps(doc, indent=2) + "\n")
    atomic_write_text(OUT / f"{args.tag}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
