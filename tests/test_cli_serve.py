"""index / recommend / items add / serve through the real command line (subprocesses), and
their error paths (one line on stderr, exit code 2)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from serve_fixtures import topic_vector

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, **extra)


def clusterneg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clusterneg.cli", *args], env=_env(),
                          capture_output=True, text=True, timeout=300)


def test_index_recommend_and_add_items(run_dir: Path, tmp_path: Path) -> None:
    done = clusterneg("index", str(run_dir), "--kind", "exact")
    assert done.returncode == 0, done.stderr
    assert "recall@50 vs exact over 60 users: 1.0000" in done.stdout
    assert (run_dir / "serving" / "index.faiss").is_file()
    meta = json.loads((run_dir / "serving" / "index.json").read_text())
    assert meta["kind"] == "exact" and meta["n_items"] == 50

    new = tmp_path / "new.jsonl"
    new.write_text("\n".join(json.dumps({"item_id": f"n{t}", "title": f"New {g}",
                                         "vector": topic_vector(g).tolist()})
                             for t, g in enumerate(["space opera", "jazz piano"])) + "\n")
    done = clusterneg("items", "add", str(run_dir), str(new))
    assert done.returncode == 0, done.stderr
    assert "added 2 items" in done.stdout and "now 52 items" in done.stdout

    done = clusterneg("recommend", str(run_dir), "--user", "u0", "-k", "3")
    assert done.returncode == 0, done.stderr
    assert "New space opera" in done.stdout  # the item added a moment ago, for a fan


def test_cli_errors_are_one_line_exit_2(run_dir: Path, tmp_path: Path, cli_run) -> None:
    done = clusterneg("recommend", str(run_dir), "--user", "nobody")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "unknown user id 'nobody'" in done.stderr and "Traceback" not in done.stderr
    for args, msg in [
        (("recommend", str(run_dir), "--user", "u0", "-k", "0"), "-k must be between"),
        (("recommend", str(run_dir)), "exactly one"),
        (("index", str(run_dir), "--kind", "annoy"), "index kind"),
        (("recommend", str(tmp_path), "--user", "u0"), "not a clusterneg run directory"),
    ]:
        code, _, err = cli_run(*args)
        assert code == 2 and msg in err and err.count("\n") == 1, (args, err)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"item_id": "a", "title": "x"}\n{"title": "no id"}\n')
    code, _, err = cli_run("items", "add", str(run_dir), str(bad))
    assert code == 2 and "bad.jsonl:2: field 'item_id'" in err
    text_only = tmp_path / "t.csv"
    text_only.write_text("item_id,title\nt1,Space Opera 9\n")
    code, _, err = cli_run("items", "add", str(run_dir), str(text_only))
    assert code == 2 and "precomputed vectors" in err
    assert not (run_dir / "serving" / "added_items.jsonl").exists()  # nothing half-added


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_health_on_loopback(run_dir: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "clusterneg.cli", "serve", str(run_dir),
                             "--port", str(port)], env=_env(CLUSTERNEG_API_KEY="k"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, health = time.monotonic() + 120, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.3)
        assert health is not None, proc.stderr.read() if proc.poll() is not None else "timeout"
        assert health.status_code == 200 and health.json()["items"] == 50
        res = httpx.post(f"http://127.0.0.1:{port}/recommend", json={"user": "u1", "k": 2})
        assert res.status_code == 200 and len(res.json()["items"]) == 2
    finally:
        proc.terminate()
        proc.wait(timeout=30)
