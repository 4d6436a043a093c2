"""The GPU checks of issue 12 as one prepared script (for a session lent an accelerator).

Runs, in order, and writes ``<out>/gpu_check.json`` and ``<out>/gpu_check.md``:

1. the CUDA tests (``pytest tests/test_device.py``: they skip without a GPU);
2. ``clusterneg data synth`` of ``--items`` items and ``--interactions`` interactions (latent
   clusters, Zipf popularity), unless the folder exists;
3. streamed training steps (``train_stream``, online logQ, the synthetic clusters) of
   in-batch, cluster-goobs (the paper's per-example negatives, fresh item-tower pass) and
   cluster-goobs with ``cached_vectors``, on every ``--devices`` entry, each for ``--steps``
   steps (``--cpu-steps`` on the CPU) after ``--warmup`` untimed ones (the clock is read
   after every step, the device synchronised first);
   examples/s per device and sampler, the ratio to in-batch on the same device, and the
   GPU / CPU ratio per sampler.

ID-only towers (the paper protocol), dimension ``--dim``, batch ``--batch``, 16 pool negatives
per example (1:15). Sized so the whole script fits a 15-minute device lease: on the device
machine (16 cores, one H200) generating 10M interactions takes about a minute and a half at
one core (measured here: 85 s), and the CPU side is capped by ``--steps``.

Device machine (the repository travels; its python3 has torch, pyarrow, typer, rich; faiss
is not needed on this path)::

    PYTHONPATH=src PYTHONUNBUFFERED=1 python3 bench/gpu_check.py --out $OUT \\
        --items 1000000 --interactions 10000000 --devices cuda,cpu

Here, to check the script itself (CPU only, small)::

    PYTHONPATH=src .venv/bin/python bench/gpu_check.py --out /tmp/gc --items 20000 \\
        --interactions 200000 --devices cpu --steps 5 --warmup 1 --no-tests
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from bench_speed import variants

from clusterneg.outputs import atomic_write_text

#: the speed bench's own variants (ID-only towers, 16 negatives, 1:15), the three compared here
SAMPLERS = {label: spec for label, spec in variants("id", 16).items()
            if label in ("in-batch", "cluster-goobs", "cluster-goobs cached")}


def synth(directory: Path, items: int, interactions: int) -> float:
    """Generate the data unless present; seconds spent (0 when it existed)."""
    from clusterneg.data.synth import SynthConfig, synthesize

    if (directory / "synth.json").is_file():
        return 0.0
    t0 = time.perf_counter()
    synthesize(SynthConfig(n_items=items, n_interactions=interactions,
                           n_users=max(1, interactions // 100)), directory)
    return time.perf_counter() - t0


def load_stream_data(directory: Path) -> tuple[Any, dict[str, Any]]:
    """The synth folder's sizes and latent clusters as ``StreamData``, and its metadata."""
    import pyarrow.parquet as pq

    from clusterneg.train.streaming import StreamData

    meta = json.loads((directory / "synth.json").read_text())
    cluster = pq.read_table(directory / "latent_items.parquet")["cluster"].to_numpy()
    return StreamData(n_users=meta["n_users"], n_items=meta["n_items"], item_cluster=cluster,
                      n_clusters=meta["n_clusters"]), meta


def timed_steps(directory: Path, data: Any, meta: dict[str, Any], label: str, device: str,
                args: argparse.Namespace) -> dict[str, Any]:
    """examples/s of ``args.steps`` training steps after ``args.warmup`` untimed ones."""
    from clusterneg.data.stream import ParquetStream
    from clusterneg.model import ModelConfig
    from clusterneg.train.config import TrainConfig
    from clusterneg.train.frequency import StreamingFrequency
    from clusterneg.train.streaming import train_stream

    name, options = SAMPLERS[label]
    model_cfg = ModelConfig(dim=args.dim, history_len=0, content=False)

    cfg = TrainConfig(sampler=name, sampler_options=options, epochs=1,
                      batch_size=args.batch, max_steps=args.warmup + args.steps, seed=0,
                      device=device, threads=args.cpu_threads if device == "cpu" else 0)
    est = StreamingFrequency(meta["n_items"], batch_size=args.batch, n_items=meta["n_items"],
                             device=device)
    stream = ParquetStream(directory, args.batch, buffer_rows=args.buffer_rows)
    clock = StepClock(device)
    train_stream(stream, data, model_cfg, cfg, frequency=est, progress=clock)
    # timed from the end of the last warm-up step (start-up, kernels, the pool preload and
    # the first shuffle-buffer fill are outside) to the end of the last step
    ticks = clock.ticks[args.warmup - 1 :] if args.warmup else [clock.start, *clock.ticks]
    if len(ticks) < 2:
        raise SystemExit(f"{directory}: {len(clock.ticks)} steps, not enough for --warmup "
                         f"{args.warmup} plus timed steps")
    steps, seconds = len(ticks) - 1, ticks[-1] - ticks[0]
    return {"sampler": label, "device": device, "steps": steps, "seconds": round(seconds, 3),
            "examples_per_s": round(steps * args.batch / seconds, 1),
            "ms_per_step": round(1e3 * seconds / max(steps, 1), 3)}


class StepClock:
    """Stands in for the progress bar ``train_stream`` reports each finished step to: reads
    the clock after each step, the device synchronised first (so a step's queued GPU work
    counts in that step)."""

    def __init__(self, device: str) -> None:
        self.device, self.ticks = device, []
        self.start = time.perf_counter()

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        _sync(self.device)
        self.start = time.perf_counter()
        return 0

    def update(self, task: int, advance: int = 0, **kwargs: Any) -> None:
        _sync(self.device)
        self.ticks.append(time.perf_counter())


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=None, help="synth folder (default: beside OUT, "
                    "gpu_check_synth_ITEMS_INTERACTIONS)")
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--interactions", type=int, default=10_000_000)
    ap.add_argument("--devices", default="cuda,cpu")
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--cpu-steps", type=int, default=20, help="timed steps on the CPU")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--cpu-threads", type=int, default=0, help="0: torch's default")
    ap.add_argument("--buffer-rows", type=int, default=1_000_000)
    ap.add_argument("--no-tests", action="store_true", help="skip the CUDA tests")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parent.parent
    doc: dict[str, Any] = {
        "command": "python bench/gpu_check.py " + " ".join(sys.argv[1:]),
        "torch": torch.__version__, "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "items": args.items, "interactions": args.interactions, "batch": args.batch,
        "dim": args.dim}
    if not args.no_tests:
        t = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            str(root / "tests" / "test_device.py")],
                           capture_output=True, text=True, cwd=root)
        doc["tests"] = {"returncode": t.returncode, "tail": t.stdout[-2000:] + t.stderr[-1000:]}
        print(doc["tests"]["tail"], flush=True)
    data = args.data or args.out.parent / f"gpu_check_synth_{args.items}_{args.interactions}"
    doc["synth_seconds"] = round(synth(data, args.items, args.interactions), 1)
    print(f"data: {data} ({doc['synth_seconds']} s)", flush=True)
    stream_data, meta = load_stream_data(data)
    rows = []
    for device in args.devices.split(","):
        if device.startswith("cuda") and not torch.cuda.is_available():
            print(f"{device}: no GPU here, skipped", flush=True)
            continue
        steps = args.cpu_steps if device == "cpu" else args.steps
        for label in SAMPLERS:
            row = timed_steps(data, stream_data, meta, label, device,
                              argparse.Namespace(**{**vars(args), "steps": steps}))
            rows.append(row)
            print(row, flush=True)
    doc["runs"] = rows
    atomic_write_text(args.out / "gpu_check.json", json.dumps(doc, indent=2) + "\n")
    atomic_write_text(args.out / "gpu_check.md", "\n".join(table(doc)) + "\n")
    print("\n".join(table(doc)))


def table(doc: dict[str, Any]) -> list[str]:
    """Markdown: examples/s per device and sampler, x in-batch, and GPU / CPU."""
    by = {(r["device"], r["sampler"]): r for r in doc["runs"]}
    devices = list(dict.fromkeys(r["device"] for r in doc["runs"]))
    out = ["# GPU check (issue 12)", "", f"`{doc['command']}`", "",
           f"torch {doc['torch']}, GPU {doc['gpu']}; {doc['items']:,} items, "
           f"{doc['interactions']:,} interactions, batch {doc['batch']}, ID-only towers of "
           f"dimension {doc['dim']}, 16 pool negatives per example (1:15).", "",
           "| device | sampler | ms/step | examples/s | x in-batch |", "|---|---|---:|---:|---:|"]
    for d in devices:
        base = by.get((d, "in-batch"))
        for s in SAMPLERS:
            r = by.get((d, s))
            if r is None:
                continue
            ratio = r["examples_per_s"] / base["examples_per_s"] if base else float("nan")
            out.append(f"| {d} | {s} | {r['ms_per_step']:.2f} | {r['examples_per_s']:,.0f} | "
                       f"{ratio:.3f} |")
    gpus = [d for d in devices if d.startswith("cuda")]
    if gpus and "cpu" in devices:
        out += ["", "| sampler | GPU / CPU examples/s |", "|---|---:|"]
        for s in SAMPLERS:
            g, c = by.get((gpus[0], s)), by.get(("cpu", s))
            if g and c:
                out.append(f"| {s} | {g['examples_per_s'] / c['examples_per_s']:.1f}x |")
    return out


if __name__ == "__main__":
    main()
