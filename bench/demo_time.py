"""How long does `make demo` take? Times the whole target and records it.

    python3 bench/demo_time.py            # in a clone where `make test` already built .venv

Writes bench/results/demo_time.json and .md (wall seconds, CPU count, whether the embedding
cache existed before the run).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    warm = (ROOT / ".cache" / "clusterneg" / "embeddings").exists()
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(["make", "demo"], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    makefile = (ROOT / "Makefile").read_text()
    line = next(ln.strip() for ln in makefile.splitlines() if "compare" in ln and "VENV" in ln)
    out = {"command": "make demo", "runs": line, "exit_code": proc.returncode,
           "seconds": round(seconds, 1), "cpus": os.cpu_count(),
           "embedding_cache_warm_before": warm,
           "load_1min_before": round(load_before, 2),
           "load_1min_after": round(os.getloadavg()[0], 2)}
    res = ROOT / "bench" / "results"
    (res / "demo_time.json").write_text(json.dumps(out, indent=2) + "\n")
    (res / "demo_time.md").write_text(
        f"# make demo\n\n`python3 bench/demo_time.py` (runs `{line}`)\n\n"
        f"| wall s | exit | cpus | embedding cache warm before | load before / after |\n"
        f"|---|---|---|---|---|\n"
        f"| {out['seconds']} | {proc.returncode} | {out['cpus']} | {warm} "
        f"| {out['load_1min_before']} / {out['load_1min_after']} |\n")


if __name__ == "__main__":
    main()
