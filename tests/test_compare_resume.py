"""``compare`` you can interrupt: SIGKILL mid-comparison, then ``--resume``. Finished runs
are not redone, and the final results equal those of a comparison never interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import write_synthetic

SRC = Path(__file__).resolve().parents[1] / "src"
TIMING = {"seconds", "train_seconds", "examples_per_s", "curve", "provenance", "argv"}


def _cmd(data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "clusterneg.cli", "compare", "--dataset", str(data),
            "--encoder", "none", "--samplers", "in-batch,mixed", "--seeds", "2",
            "--epochs", "2", "--batch-size", "32", "--dim", "8", "--threads", "1",
            "--out", str(out), *extra]


def _env(tmp: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(SRC), CLUSTERNEG_CACHE=str(tmp / "cache"),
                OMP_NUM_THREADS="1")


def _strip(obj: object) -> object:
    """The results without wall-clock timings (they differ between any two runs)."""
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in TIMING}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _rows(out: Path) -> list[dict]:
    path = out / "runs.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_sigkill_then_resume_equals_an_uninterrupted_comparison(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "data", n_users=60, n_items=120, per_user=12)
    env = _env(tmp_path)
    whole = subprocess.run(_cmd(data, tmp_path / "whole"), env=env, capture_output=True,
                           text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr

    part = tmp_path / "part"
    proc = subprocess.Popen(_cmd(data, part), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not _rows(part) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _rows(part)
    assert 1 <= len(done) < 4 and not (part / "results.json").exists()
    first = part / "runs" / f"{done[0]['sampler']}-seed{done[0]['seed']}" / "model.safetensors"
    stamp = (first.stat().st_mtime_ns, first.read_bytes())

    again = subprocess.run(_cmd(data, part), env=env, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 2 and "--resume" in again.stderr  # never silently restarted
    resumed = subprocess.run(_cmd(data, part, "--resume"), env=env, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr.count("already finished") == len(done)
    assert (first.stat().st_mtime_ns, first.read_bytes()) == stamp  # not redone

    a = json.loads((tmp_path / "whole" / "results.json").read_text())
    b = json.loads((part / "results.json").read_text())
    key = lambda r: (r["sampler"], r["seed"])  # noqa: E731
    assert _strip(sorted(a["runs"], key=key)) == _strip(sorted(b["runs"], key=key))
    assert _strip(a["significance"]) == _strip(b["significance"])
    for sampler in ("in-batch", "mixed"):
        assert a["summary"][sampler]["hr@50"] == b["summary"][sampler]["hr@50"]

    # --jobs 2: the same runs in two worker processes give the same results, and the
    # workers' per-epoch lines reach the user's terminal
    par = subprocess.run(_cmd(data, tmp_path / "par", "--jobs", "2"), env=env,
                         capture_output=True, text=True, timeout=600)
    assert par.returncode == 0, par.stderr
    c = json.loads((tmp_path / "par" / "results.json").read_text())
    assert _strip(sorted(a["runs"], key=key)) == _strip(sorted(c["runs"], key=key))
    for sampler in ("in-batch", "mixed"):
        assert f"{sampler} seed 1 epoch 2/2: loss" in par.stderr


def test_resume_refuses_different_settings(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "data", n_users=30, n_items=40, per_user=8)
    out = tmp_path / "cmp"
    first = subprocess.run(_cmd(data, out, "--samplers", "in-batch", "--seeds", "1",
                                "--epochs", "1"), env=_env(tmp_path), capture_output=True,
                           text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    other = subprocess.run(_cmd(data, out, "--samplers", "in-batch", "--seeds", "1",
                                "--epochs", "2", "--resume"), env=_env(tmp_path),
                           capture_output=True, text=True, timeout=600)
    assert other.returncode == 2 and "settings differ" in other.stderr
    assert len(other.stderr.splitlines()) == 1
    # an added sampler brings its own options; a finished sampler's options cannot change
    args = ("--seeds", "1", "--epochs", "1", "--resume", "--samplers", "in-batch,mixed@m")
    added = subprocess.run(_cmd(data, out, *args, "-o", "mixed@m:n_negatives=4"),
                           env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert added.returncode == 0, added.stderr
    assert "mixed@m" in added.stderr and "already finished" in added.stderr
    changed = subprocess.run(_cmd(data, out, *args, "-o", "mixed@m:n_negatives=5"),
                             env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert changed.returncode == 2 and "compare.sampler_options" in changed.stderr


def test_resume_with_more_seeds_extends_a_finished_comparison(tmp_path: Path) -> None:
    """``--resume --seeds 2`` on a finished 1-seed comparison trains only seed 1 of each
    sampler; the result equals a 2-seed comparison run at once (the runs are the same)."""
    data = write_synthetic(tmp_path / "data", n_users=30, n_items=40, per_user=8)
    env = _env(tmp_path)
    out = tmp_path / "cmp"
    one = subprocess.run(_cmd(data, out, "--seeds", "1", "--epochs", "1"), env=env,
                         capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr
    seed0 = out / "runs" / "in-batch-seed0" / "model.safetensors"
    stamp = (seed0.stat().st_mtime_ns, seed0.read_bytes())
    more = subprocess.run(_cmd(data, out, "--seeds", "2", "--epochs", "1", "--resume"),
                          env=env, capture_output=True, text=True, timeout=600)
    assert more.returncode == 0, more.stderr
    assert more.stderr.count("already finished") == 2  # both samplers' seed 0
    assert "seeds 1 -> 2" in more.stderr
    assert (seed0.stat().st_mtime_ns, seed0.read_bytes()) == stamp
    assert json.loads((out / "compare.json").read_text())["compare"]["seeds"] == 2
    both = subprocess.run(_cmd(data, tmp_path / "both", "--seeds", "2", "--epochs", "1"),
                          env=env, capture_output=True, text=True, timeout=600)
    assert both.returncode == 0, both.stderr
    a = json.loads((out / "results.json").read_text())
    b = json.loads((tmp_path / "both" / "results.json").read_text())
    key = lambda r: (r["sampler"], r["seed"])  # noqa: E731
    assert _strip(sorted(a["runs"], key=key)) == _strip(sorted(b["runs"], key=key))


def test_resume_reads_a_setting_an_older_version_did_not_save_as_its_default(
        tmp_path: Path) -> None:
    """A comparison saved before ``train.optimizer`` existed resumes when the option is at
    its default, and is refused when it is not."""
    data = write_synthetic(tmp_path / "data", n_users=30, n_items=40, per_user=8)
    env = _env(tmp_path)
    out = tmp_path / "cmp"
    first = subprocess.run(_cmd(data, out, "--samplers", "in-batch", "--seeds", "1",
                                "--epochs", "1"), env=env, capture_output=True, text=True,
                           timeout=600)
    assert first.returncode == 0, first.stderr
    saved = json.loads((out / "compare.json").read_text())
    del saved["compare"]["train"]["optimizer"]
    (out / "compare.json").write_text(json.dumps(saved))
    args = ("--samplers", "in-batch", "--seeds", "1", "--epochs", "1", "--resume")
    lazy = subprocess.run(_cmd(data, out, *args, "--optimizer", "lazy-adam"), env=env,
                          capture_output=True, text=True, timeout=600)
    assert lazy.returncode == 2 and "compare.train" in lazy.stderr
    same = subprocess.run(_cmd(data, out, *args), env=env, capture_output=True, text=True,
                          timeout=600)
    assert same.returncode == 0, same.stderr
    assert "already finished" in same.stderr


def test_adopt_trial_moves_the_chosen_trial_and_keeps_a_finished_seed_0(tmp_path: Path) -> None:
    """The chosen tuning trial becomes ``runs/SAMPLER-seed0`` (a half-written seed-0 run is
    replaced); a seed-0 run already finished (its row recorded) is kept, the trial dropped."""
    import torch

    from clusterneg.compare_store import RunStore
    from clusterneg.train.checkpoint import save_checkpoint

    store = RunStore(tmp_path / "cmp", {"compare": "t"})
    store.start("")

    def trial(sampler: str, i: int, value: float) -> Path:
        return save_checkpoint(store.trial_dir(sampler, i), {"w": torch.full((2,), value)},
                               {}, {})

    stale = store.run_dir("a", 0)
    stale.mkdir(parents=True)
    (stale / "partial").write_text("killed mid-write")
    store.adopt_trial("a", trial("a", 1, 1.0))
    assert not (stale / "partial").exists() and (stale / "model.safetensors").is_file()
    assert not store.trial_dir("a", 1).exists()

    save_checkpoint(store.run_dir("b", 0), {"w": torch.zeros(2)}, {}, {})
    store.add_row("b", 0, {"sampler": "b", "seed": 0})
    before = (store.run_dir("b", 0) / "model.safetensors").read_bytes()
    store.adopt_trial("b", trial("b", 0, 2.0))
    assert (store.run_dir("b", 0) / "model.safetensors").read_bytes() == before
    assert not (tmp_path / "cmp" / "tuning" / "runs").exists()
