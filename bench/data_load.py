"""Load time and summary statistics of the data layer on real and synthetic data.

Run from the repository root:

    PYTHONPATH=src .venv/bin/python bench/data_load.py [--amazon ../shared/data/amazon-office]

Writes bench/data_load.json and bench/data_load.md. Each dataset is loaded ``--repeats``
times in this process (after one warm-up load, so imports are not counted); the table gives
the median and the minimum. The synthetic sets (1M interactions as CSV, Parquet and
MovieLens-1M ``.dat``) are generated in a temporary directory and show how loading scales.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from clusterneg.data import dataset_stats, load_dataset, make_split
from clusterneg.outputs import atomic_write_text

HERE = Path(__file__).resolve().parent


def time_load(spec: str, repeats: int) -> tuple[list[float], object]:
    ds = load_dataset(spec)  # warm-up: imports, page cache
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ds = load_dataset(spec)
        times.append(time.perf_counter() - t0)
    return times, ds


def synthetic(root: Path, n: int = 1_000_000, n_users: int = 6_000, n_items: int = 4_000,
              seed: int = 0) -> dict[str, Path]:
    """1M interactions written as a CSV table, a Parquet table and MovieLens-1M .dat files."""
    rng = np.random.default_rng(seed)
    user = rng.integers(1, n_users + 1, n)
    item = rng.zipf(1.3, n) % n_items + 1
    ts = rng.integers(956_703_932, 1_046_454_590, n)
    out = {}
    for ext in ("csv", "parquet"):
        d = root / f"table-{ext}"
        d.mkdir()
        tab = pa.table({"user_id": user, "item_id": item, "timestamp": ts})
        items = pa.table({"item_id": np.arange(1, n_items + 1),
                          "title": [f"item {i}" for i in range(1, n_items + 1)]})
        if ext == "csv":
            pacsv.write_csv(tab, d / "interactions.csv")
            pacsv.write_csv(items, d / "items.csv")
        else:
            pq.write_table(tab, d / "interactions.parquet")
            pq.write_table(items, d / "items.parquet")
        out[f"synthetic-1M-{ext}"] = d
    d = root / "ml-1m-like"
    d.mkdir()
    rating = rng.integers(1, 6, n)
    lines = "\n".join(f"{u}::{i}::{r}::{t}" for u, i, r, t in zip(user, item, rating, ts,
                                                                   strict=True))
    (d / "ratings.dat").write_text(lines + "\n", encoding="latin-1")
    movies = "\n".join(f"{i}::Movie {i} (1999)::Drama|Comedy" for i in range(1, n_items + 1))
    (d / "movies.dat").write_text(movies + "\n", encoding="latin-1")
    out["synthetic-1M-dat"] = d
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--amazon", default=str(HERE.parent.parent / "shared/data/amazon-office"))
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    results: dict[str, dict] = {}
    specs = {"ml-100k": "ml-100k", "amazon-office": args.amazon}
    with tempfile.TemporaryDirectory() as tmp:
        specs.update({k: str(v) for k, v in synthetic(Path(tmp)).items()})
        for name, spec in specs.items():
            repeats = args.repeats if not name.startswith("synthetic") else 3
            times, ds = time_load(spec, repeats)
            t0 = time.perf_counter()
            split = make_split(ds, seed=0)
            split_s = time.perf_counter() - t0
            results[name] = {
                "load_s_median": statistics.median(times), "load_s_min": min(times),
                "repeats": repeats, "split_s": split_s, "split": split.describe(),
                "stats": {k: v for k, v in dataset_stats(ds).items() if k != "source"},
            }
    atomic_write_text(HERE / "data_load.json", json.dumps(results, indent=2) + "\n")
    write_markdown(results)


def write_markdown(results: dict[str, dict]) -> None:
    rows = ["| dataset | users | items | interactions | load median (s) | load min (s) | "
            "split (s) | top-100 share |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        s = r["stats"]
        rows.append(f"| {name} | {s['n_users']:,} | {s['n_items']:,} | "
                    f"{s['n_interactions']:,} | {r['load_s_median']:.3f} | "
                    f"{r['load_s_min']:.3f} | {r['split_s']:.3f} | {s['top100_share']:.3f} |")
    text = ("# Data layer: load time\n\n"
            "Command: `PYTHONPATH=src .venv/bin/python bench/data_load.py` (2-core machine; "
            "median of repeated loads in one process after a warm-up load; split = default "
            "`make_split(ds, seed=0)`).\n\n" + "\n".join(rows) + "\n")
    atomic_write_text(HERE / "data_load.md", text)


if __name__ == "__main__":
    main()
