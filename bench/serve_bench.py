"""The HTTP service under load, fuzzed from its OpenAPI schema, and taking 1,000 new items
while running (issue 13). Traffic goes to 127.0.0.1 only.

1. Build a synthetic run (cached in --work): 4,000 users who mostly like one of 25 topics,
   5,000 items whose precomputed 32-d content vectors point at their topic (noise added), a
   few epochs of training, so clusters and users' tastes are known by construction.
2. Start ``clusterneg serve RUN`` on a free loopback port (a separate process).
3. Load test from this process: --requests requests at --concurrency, --malformed of them
   malformed (bad JSON, wrong types, k out of range, unknown ids, extra fields, oversized
   bodies): p50 / p99 latency, status counts, zero 5xx required, /health at the end.
4. Schemathesis against /openapi.json (check: not_a_server_error), with the API key.
5. New items: --new-items items, one POST /items each, each a vector of a random topic.
   After each add: time until a /recommend for a user whose history's majority cluster is
   the item's cluster returns it (top-100); and at the end, recall@100 of the new items for
   such matched users vs random users.

Run (the committed result):
    OMP_NUM_THREADS=1 nice python bench/serve_bench.py --work /tmp/clusterneg-serve-bench
Writes bench/results/serve.json and bench/results/serve.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from clusterneg.outputs import atomic_write_text

OUT = Path(__file__).resolve().parent / "results"
KEY = "bench-key"
TOPICS, DIM = 25, 32


def topic_centres(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((TOPICS, DIM)).astype(np.float32)


def item_vector(topic: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    v = centres[topic] + 0.5 * rng.standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def build_run(work: Path, n_users: int = 4000, n_items: int = 5000, per_user: int = 20) -> Path:
    """Synthetic data + precomputed vectors + a short training run (skipped when cached)."""
    run = work / "run"
    if (run / "model.safetensors").exists():
        return run
    import pyarrow as pa
    import pyarrow.parquet as pq

    from clusterneg.experiment import ExperimentConfig, prepare
    from clusterneg.experiment import run as train_run
    from clusterneg.model import ModelConfig
    from clusterneg.train.config import TrainConfig

    rng, centres = np.random.default_rng(0), topic_centres()
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    topic = rng.integers(0, TOPICS, n_items)
    rows = ["user_id,item_id,timestamp"]
    for u in range(n_users):
        fav, mine = u % TOPICS, np.flatnonzero(topic == u % TOPICS)
        picks = np.concatenate([rng.choice(mine, per_user - 4, replace=False),
                                rng.choice(np.flatnonzero(topic != fav), 4, replace=False)])
        rng.shuffle(picks)
        rows += [f"u{u},i{j},{t}" for t, j in enumerate(picks)]
    (data / "interactions.csv").write_text("\n".join(rows) + "\n")
    (data / "items.csv").write_text("item_id,title\n" + "\n".join(
        f"i{j},Topic {topic[j]} item {j}" for j in range(n_items)) + "\n")
    vecs = [item_vector(int(t), rng, centres).tolist() for t in topic]
    pq.write_table(pa.table({"item_id": [f"i{j}" for j in range(n_items)], "vector": vecs}),
                   work / "vectors.parquet")
    exp = ExperimentConfig(dataset=str(data), encoder=f"precomputed:{work / 'vectors.parquet'}",
                           n_clusters=TOPICS, split="leave-last-out")
    train_run(prepare(exp), ModelConfig(dim=32, history_len=20),
              TrainConfig(epochs=4, batch_size=256, lr=0.01, patience=4, threads=1),
              out_dir=run)
    return run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(run: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, CLUSTERNEG_API_KEY=KEY)
    proc = subprocess.Popen([sys.executable, "-m", "clusterneg.cli", "serve", str(run),
                             "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True)
    import httpx

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("server did not come up in 300 s")


MALFORMED = [
    ("bad_json", lambda: (b"{not json", "application/json")),
    ("wrong_type", lambda: (json.dumps({"user": "u1", "k": "ten"}).encode(), "application/json")),
    ("k_zero", lambda: (json.dumps({"user": "u1", "k": 0}).encode(), "application/json")),
    ("k_huge", lambda: (json.dumps({"user": "u1", "k": 10**9}).encode(), "application/json")),
    ("unknown_user", lambda: (json.dumps({"user": "nobody"}).encode(), "application/json")),
    ("unknown_item", lambda: (json.dumps({"items": ["zz"]}).encode(), "application/json")),
    ("both", lambda: (json.dumps({"user": "u1", "items": ["i1"]}).encode(),
                      "application/json")),
    ("extra_field", lambda: (json.dumps({"user": "u1", "x": 1}).encode(), "application/json")),
    ("not_object", lambda: (b"[1,2,3]", "application/json")),
    ("oversized", lambda: (b'{"items": [' + b'"i1",' * 900_000 + b'"i1"]}',
                           "application/json")),
]


async def load_test(base: str, n: int, concurrency: int, malformed: float, n_users: int,
                    seed: int = 0) -> dict:
    import httpx

    rng = random.Random(seed)
    plan = []
    for i in range(n):
        if rng.random() < malformed:
            plan.append(MALFORMED[i % len(MALFORMED)][0])
        else:
            plan.append("valid")
    bodies = {name: make for name, make in MALFORMED}
    lat: dict[str, list[float]] = {"valid": [], "malformed": []}
    status: dict[str, int] = {}
    sem = asyncio.Semaphore(concurrency)

    async def one(client: httpx.AsyncClient, kind: str) -> None:
        if kind == "valid":
            body = ({"user": f"u{rng.randrange(n_users)}", "k": rng.choice([10, 20, 100])}
                    if rng.random() < 0.9 else
                    {"items": [f"i{rng.randrange(5000)}" for _ in range(5)], "k": 20})
            content, ctype = json.dumps(body).encode(), "application/json"
        else:
            content, ctype = bodies[kind]()
        async with sem:
            t0 = time.perf_counter()
            try:
                res = await client.post(f"{base}/recommend", content=content,
                                        headers={"content-type": ctype})
                code = str(res.status_code)
            except httpx.TransportError as exc:
                code = f"transport-error-{type(exc).__name__}"
            dt = time.perf_counter() - t0
        lat["valid" if kind == "valid" else "malformed"].append(dt)
        key = f"{kind}:{code}"
        status[key] = status.get(key, 0) + 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    t0 = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        await asyncio.wait_for(asyncio.gather(*(one(client, k) for k in plan)), timeout=900)
    wall = time.perf_counter() - t0
    all_lat = np.array(lat["valid"] + lat["malformed"]) * 1000
    valid = np.array(lat["valid"]) * 1000
    return {"requests": n, "concurrency": concurrency, "malformed_share": malformed,
            "malformed_sent": len(lat["malformed"]), "wall_s": wall,
            "requests_per_s": n / wall,
            "p50_ms": float(np.percentile(all_lat, 50)),
            "p99_ms": float(np.percentile(all_lat, 99)),
            "valid_p50_ms": float(np.percentile(valid, 50)),
            "valid_p99_ms": float(np.percentile(valid, 99)),
            "status": dict(sorted(status.items())),
            "n_5xx": sum(v for k, v in status.items() if k.split(":")[1].startswith("5"))}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fuzz(base: str, max_examples: int, work: Path) -> dict:
    exe = Path(sys.executable).with_name("schemathesis")
    cmd = [str(exe), "run", f"{base}/openapi.json", "--checks", "not_a_server_error",
           "-n", str(max_examples), "-H", f"X-API-Key: {KEY}", "--request-timeout", "30",
           "--generation-deterministic", "--report", "junit",
           "--report-junit-path", str(work / "schemathesis.xml")]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, cwd=work)
    tail = "\n".join(done.stdout.strip().splitlines()[-25:])
    shown = " ".join(cmd[1:]).replace(base, "http://127.0.0.1:PORT")
    return {"tool": "schemathesis", "command": shown,
            "exit_code": done.returncode, "seconds": time.perf_counter() - t0,
            "max_examples_per_operation": max_examples, "summary": tail}


def user_clusters(run: Path) -> tuple[dict[int, list[str]], list[str]]:
    """Users grouped by the majority cluster of their interactions, and every user id."""
    from clusterneg.serve.run_state import load_run_state

    st = load_run_state(run)
    assert st.clusters is not None
    ic, inter = st.clusters.item_cluster, st.dataset.interactions
    by: dict[int, list[str]] = {}
    for u, uid in enumerate(st.dataset.user_ids):
        c = int(np.bincount(ic[inter.item[inter.user == u]]).argmax())
        by.setdefault(c, []).append(str(uid))
    return by, [str(u) for u in st.dataset.user_ids]


def new_items(base: str, run: Path, n: int, seed: int = 1) -> dict:
    import httpx

    by_cluster, users = user_clusters(run)
    rng, prng = np.random.default_rng(seed), random.Random(seed)
    centres = topic_centres()
    added, to_retrievable, first_try, adds = [], [], 0, []
    with httpx.Client(timeout=60) as client:
        for j in range(n):
            vec = item_vector(int(rng.integers(0, TOPICS)), rng, centres)
            t0 = time.perf_counter()
            res = client.post(f"{base}/items", headers={"X-API-Key": KEY},
                              json={"items": [{"item_id": f"new{j}", "fields": {
                                  "title": f"New item {j}"}, "vector": vec.tolist()}]})
            adds.append(time.perf_counter() - t0)
            res.raise_for_status()
            cluster = res.json()["added"][0]["cluster"]
            user = prng.choice(by_cluster.get(cluster) or users)
            added.append((f"new{j}", cluster))
            for attempt in range(3):
                got = client.post(f"{base}/recommend", json={"user": user, "k": 100}).json()
                if any(x["item_id"] == f"new{j}" for x in got["items"]):
                    to_retrievable.append(time.perf_counter() - t0)
                    first_try += attempt == 0
                    break
        hits = {"matched": 0, "random": 0}
        for item, cluster in added:
            for kind, user in (("matched", prng.choice(by_cluster.get(cluster) or users)),
                               ("random", prng.choice(users))):
                got = client.post(f"{base}/recommend", json={"user": user, "k": 100}).json()
                hits[kind] += any(x["item_id"] == item for x in got["items"])
    t = np.array(to_retrievable) * 1000
    return {"added": n, "add_p50_ms": float(np.percentile(np.array(adds) * 1000, 50)),
            "add_p99_ms": float(np.percentile(np.array(adds) * 1000, 99)),
            "retrieved_right_after_add": len(to_retrievable),
            "retrieved_on_first_query": first_try,
            "time_to_retrievable_p50_ms": float(np.percentile(t, 50)) if len(t) else None,
            "time_to_retrievable_p99_ms": float(np.percentile(t, 99)) if len(t) else None,
            "recall@100_matched_users_at_end": hits["matched"] / n,
            "recall@100_random_users_at_end": hits["random"] / n}


def main() -> None:
    import httpx

    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/clusterneg-serve-bench"))
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--malformed", type=float, default=0.1)
    ap.add_argument("--fuzz-examples", type=int, default=100)
    ap.add_argument("--new-items", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    trained = build_run(args.work)
    run = args.work / "served"  # a fresh copy each time: no items left from an earlier bench
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(trained, run, ignore=shutil.ignore_patterns("serving"))
    port = free_port()
    server = start_server(run, port)
    base = f"http://127.0.0.1:{port}"
    result: dict = {"command": "OMP_NUM_THREADS=1 nice python bench/serve_bench.py "
                    + " ".join(sys.argv[1:])}
    try:
        result["health_before"] = httpx.get(f"{base}/health").json()
        print("load test...", file=sys.stderr, flush=True)
        cpu0 = cpu_seconds(server.pid)
        result["load"] = asyncio.run(load_test(base, args.requests, args.concurrency,
                                               args.malformed, 4000))
        cpu = cpu_seconds(server.pid) - cpu0
        result["load"]["server_cpu_s"] = cpu
        result["load"]["server_cpu_ms_per_request"] = 1000 * cpu / args.requests
        result["health_after_load"] = httpx.get(f"{base}/health").status_code
        print(result["load"], file=sys.stderr, flush=True)
        print("fuzz...", file=sys.stderr, flush=True)
        result["fuzz"] = fuzz(base, args.fuzz_examples, args.work)
        print(result["fuzz"]["summary"], file=sys.stderr, flush=True)
        print("new items...", file=sys.stderr, flush=True)
        result["new_items"] = new_items(base, run, args.new_items)
        result["health_at_end"] = httpx.get(f"{base}/health").json()
    finally:
        server.terminate()
        server.wait(timeout=60)
    result["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count(),
                         "load_1min": os.getloadavg()[0]}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "serve.json", json.dumps(result, indent=1))
    atomic_write_text(args.out / "serve.md", markdown(result))
    print(markdown(result))


def markdown(r: dict) -> str:
    ld, ni, fz = r["load"], r["new_items"], r["fuzz"]
    return "\n".join([
        "# HTTP service: load, schema fuzzing, new items", "", f"`{r['command']}`", "",
        "Server: `clusterneg serve` (uvicorn, one process, torch 1 thread) on 127.0.0.1, "
        f"{r['health_before']['items']} items ({r['health_before']['index']} index); client: "
        "this script in a second process. Shared 2-core machine "
        f"(1-min load {r['machine']['load_1min']:.1f} at the end).", "",
        "## Load test", "",
        "| requests | concurrency | malformed | req/s | p50 (ms) | p99 (ms) | valid p50 | "
        "valid p99 | 5xx | healthy after |", "|---|---|---|---|---|---|---|---|---|---|",
        f"| {ld['requests']} | {ld['concurrency']} | {ld['malformed_sent']} | "
        f"{ld['requests_per_s']:.0f} | {ld['p50_ms']:.1f} | {ld['p99_ms']:.1f} | "
        f"{ld['valid_p50_ms']:.1f} | {ld['valid_p99_ms']:.1f} | {ld['n_5xx']} | "
        f"{r['health_after_load'] == 200} |", "",
        f"The server used {ld.get('server_cpu_s', float('nan')):.1f} CPU seconds for the "
        f"{ld['requests']} requests ({ld.get('server_cpu_ms_per_request', float('nan')):.2f} "
        "ms each, so one idle core would serve about "
        f"{1000 / ld.get('server_cpu_ms_per_request', float('nan')):.0f} requests/s); the "
        "latencies above are mostly queueing for a CPU on the shared, overloaded machine.", "",
        "Status counts: " + ", ".join(f"`{k}` {v}" for k, v in ld["status"].items()), "",
        "## Schema fuzzing", "",
        f"`schemathesis {fz['command']}`: exit code {fz['exit_code']} "
        f"({fz['seconds']:.0f} s; 0 means no check failed).", "", "```",
        fz["summary"], "```", "",
        "## New items", "",
        f"{ni['added']} items added one POST each to the running service (add p50 "
        f"{ni['add_p50_ms']:.1f} ms, p99 {ni['add_p99_ms']:.1f} ms).", "",
        "| retrievable right after its add | on the first query | time to retrievable p50 / "
        "p99 (ms) | recall@100, matched users | recall@100, random users |",
        "|---|---|---|---|---|",
        f"| {ni['retrieved_right_after_add']} / {ni['added']} | "
        f"{ni['retrieved_on_first_query']} | {_ms(ni['time_to_retrievable_p50_ms'])} / "
        f"{_ms(ni['time_to_retrievable_p99_ms'])} | "
        f"{ni['recall@100_matched_users_at_end']:.3f} | "
        f"{ni['recall@100_random_users_at_end']:.3f} |", "",
        "\"Retrievable\": a /recommend (k=100) for a user whose history's majority cluster is "
        "the item's cluster returns it (up to 3 queries; time from sending the add). Recall "
        "at the end: after all adds, one matched and one random user per new item.", ""])


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


if __name__ == "__main__":
    main()
