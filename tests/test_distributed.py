"""Two torchrun processes (gloo) on one machine: one global pool, the same towers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from tests.kill_helpers import kill_after_checkpoint

from clusterneg.data.synth import SynthConfig, synthesize
from clusterneg.train.state import step_dirs

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _two_ranks(data: Path, out: Path, *args: str) -> list[dict[str, torch.Tensor]]:
    """Train with two torchrun ranks (one thread each); both ranks' saved pools."""
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--standalone", "-m", "clusterneg.train.distributed", str(data), "--out",
           str(out), *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    return [load_file(str(out / f"pool-rank{r}.safetensors")) for r in (0, 1)]


def test_two_ranks_hold_the_same_pool_and_weights_and_learn(tmp_path: Path) -> None:
    data = synthesize(SynthConfig(n_items=400, n_interactions=12_000, n_users=200,
                                  n_clusters=8, shard_rows=1_500, seed=1), tmp_path / "d")
    out = tmp_path / "run"
    pools = _two_ranks(data, out, "--batch-size", "48", "--steps", "80", "--negatives", "8")
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert torch.equal(pools[0]["item_ids"], pools[1]["item_ids"])
    assert torch.equal(pools[0]["written"], pools[1]["written"])
    assert int(pools[0]["written"].max()) == 79  # written by the last step's global batch
    assert ranks[0]["weights_checksum"] == ranks[1]["weights_checksum"]  # DDP kept them equal
    for r in ranks:
        assert r["steps"] == 80 and r["world"] == 2
        assert np.mean(r["losses"][-10:]) < np.mean(r["losses"][:10])
    assert ranks[0]["losses"] != ranks[1]["losses"]  # each rank trains on its own data
    assert (out / "model" / "model.safetensors").exists()


def test_two_ranks_with_lazy_adam_all_reduce_sparse_rows_and_stay_equal(tmp_path: Path) -> None:
    """--optimizer lazy-adam under DDP (gloo): the tables' sparse gradients are all-reduced
    as rows, both ranks apply the same row updates, so the weights stay identical."""
    data = synthesize(SynthConfig(n_items=300, n_interactions=6_000, n_users=150,
                                  n_clusters=6, shard_rows=1_000, seed=4), tmp_path / "d")
    out = tmp_path / "run"
    _two_ranks(data, out, "--batch-size", "32", "--steps", "60", "--negatives", "8",
               "--optimizer", "lazy-adam")
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["weights_checksum"] == ranks[1]["weights_checksum"]
    for r in ranks:
        assert np.mean(r["losses"][-10:]) < np.mean(r["losses"][:10])


def test_two_ranks_hold_the_same_cached_vectors(tmp_path: Path) -> None:
    """cached_vectors under torchrun: each rank writes the global batch's item vectors
    (gathered like the ids) and refreshes from identical weights, so the pools' vectors
    stay identical across ranks."""
    data = synthesize(SynthConfig(n_items=300, n_interactions=6_000, n_users=150,
                                  n_clusters=6, shard_rows=1_000, seed=2), tmp_path / "d")
    pools = _two_ranks(data, tmp_path / "run", "--batch-size", "32", "--steps", "40",
                       "--negatives", "8", "-o", "cached_vectors=true", "-o", "refresh_every=20")
    assert torch.equal(pools[0]["item_ids"], pools[1]["item_ids"])
    assert torch.equal(pools[0]["rows"], pools[1]["rows"])
    filled = pools[0]["item_ids"] >= 0
    assert bool(filled.any()) and bool((pools[0]["rows"][filled].norm(dim=1) > 0).all())
    # --pool-rows local: ids only on the network, every rank embeds the global batch itself
    # from the same weights: the same pools on both ranks, the same items as with gathered
    # vectors, and the same vectors up to float rounding
    local = _two_ranks(data, tmp_path / "local", "--batch-size", "32", "--steps", "40",
                       "--negatives", "8", "-o", "cached_vectors=true", "-o",
                       "refresh_every=20", "--pool-rows", "local")
    assert torch.equal(local[0]["item_ids"], local[1]["item_ids"])
    assert torch.equal(local[0]["rows"], local[1]["rows"])
    assert torch.equal(local[0]["item_ids"], pools[0]["item_ids"])
    assert torch.allclose(local[0]["rows"], pools[0]["rows"], atol=1e-4)


def test_a_bad_sampler_option_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """The entry point's -o options are checked before any process group or output."""
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "clusterneg.train.distributed",
                           str(tmp_path / "data"), "--out", str(out), "-o", "nope=1"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "nope" in done.stderr
    assert not out.exists()


def test_a_bad_command_line_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """argparse's own errors (missing argument, bad value, unknown option) follow the same
    contract: one line naming what was wrong, exit code 2, no usage block, nothing written."""
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "run"
    for args, word in (([], "--out"), ([str(tmp_path), "--out", str(out), "--negatives",
                                        "many"], "many"),
                       ([str(tmp_path), "--out", str(out), "--bogus"], "--bogus"),
                       ([str(tmp_path), "--out", str(out), "--optimizer", "sgd"], "sgd"),
                       ([str(tmp_path), "--out", str(out), "--optimizer", "lazy-adam",
                         "--device", "cuda"], "gloo")):
        done = subprocess.run([sys.executable, "-m", "clusterneg.train.distributed", *args],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, args
        assert done.stderr.count("\n") == 1 and word in done.stderr, done.stderr
        assert done.stderr.startswith("error: ") and "usage" not in done.stderr
    assert not out.exists()


def _torchrun(data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
            "--standalone", "-m", "clusterneg.train.distributed", str(data), "--out",
            str(out), "--batch-size", "16", "--epochs", "2", "--negatives", "8",
            "--checkpoint-every", "17", *extra]


def test_two_ranks_sigkilled_mid_epoch_resume_to_the_uninterrupted_weights(
        tmp_path: Path) -> None:
    """Each rank checkpoints its own state; after a SIGKILL of the whole torchrun group the
    resumed ranks continue from the newest step both wrote and end bit-identical to an
    uninterrupted run (weights, pools, per-epoch losses)."""
    data = synthesize(SynthConfig(n_items=300, n_interactions=9_600, n_users=150,
                                  n_clusters=6, shard_rows=1_200, seed=4), tmp_path / "d")
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    ref, run = tmp_path / "ref", tmp_path / "run"
    done = subprocess.run(_torchrun(data, ref), env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    state = tmp_path / "run.state"
    kill_after_checkpoint(_torchrun(data, run), env, [state / "rank-0", state / "rank-1"])
    assert not (run / "model").exists()
    steps_per_epoch = json.loads((ref / "rank0.json").read_text())["steps"] // 2
    assert step_dirs(state / "rank-0")[-1][0] % steps_per_epoch != 0  # mid-epoch
    done = subprocess.run(_torchrun(data, run, "--resume"), env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    a = load_file(str(ref / "model" / "model.safetensors"))
    b = load_file(str(run / "model" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # bitwise
    for r in (0, 1):
        pa_, pb_ = (load_file(str(d / f"pool-rank{r}.safetensors")) for d in (ref, run))
        assert all(torch.equal(pa_[k], pb_[k]) for k in pa_)
        sa, sb = (json.loads((d / f"rank{r}.json").read_text()) for d in (ref, run))
        assert sa["epoch_losses"] == sb["epoch_losses"] and sa["steps"] == sb["steps"]
        assert len(sb["losses"]) < sb["steps"]  # the resumed process ran only the rest
