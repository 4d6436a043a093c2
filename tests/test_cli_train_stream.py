"""``clusterneg train-stream`` as a subprocess: trains on ``data synth``'s output into a run
directory that ``recommend`` reads and ``evaluate`` refuses (no held-out split); bad input
is one line with exit code 2; a run SIGKILLed mid-epoch and resumed ends with the same
weights and the same per-epoch losses as an uninterrupted one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file
from tests.kill_helpers import kill_after_checkpoint

from clusterneg.data.synth import SynthConfig, synthesize
from clusterneg.train.state import step_dirs

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clusterneg.cli", *args], env=_env(),
                          capture_output=True, text=True, timeout=300)


def _train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train-stream", str(data), "--out", str(out), "--sampler", "cluster-goobs",
            "-o", "n_negatives=8", "--batch-size", "32", "--buffer-rows", "300", "--dim", "8",
            "--threads", "1", "--seed", "5", *extra]


def _one_line_exit_2(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


def test_trains_on_synth_output_into_a_run_recommend_reads(tmp_path: Path) -> None:
    syn = tmp_path / "syn"
    made = _cli("data", "synth", "--items", "120", "--interactions", "1000", "--users", "60",
                "--clusters", "4", "--shard-rows", "400", "--out", str(syn))
    assert made.returncode == 0, made.stderr
    run = tmp_path / "run"
    done = _cli(*_train_args(syn, run, "--epochs", "2"))
    assert done.returncode == 0, done.stderr
    metrics = json.loads((run / "metrics.json").read_text())["train"]
    config = json.loads((run / "config.json").read_text())
    # 1,000 rows a pass in batches of 32: 31 full batches and one of 8, twice
    assert metrics["steps"] == 64 and metrics["epochs"] == 2
    assert config["stream"]["data"] == str(syn.resolve())
    assert config["sampler"]["name"] == "cluster-goobs"
    weights = load_file(str(run / "model.safetensors"))
    assert weights["item_emb.weight"].shape == (120, 8)
    latent = pq.read_table(syn / "latent_items.parquet")["cluster"].to_numpy()
    assert weights["extra.item_cluster"].tolist() == latent.tolist()  # the synth's clusters
    rec = _cli("recommend", str(run), "--user", "3", "-k", "5")
    assert rec.returncode == 0, rec.stderr
    assert "top 5 for user 3" in rec.stdout
    _one_line_exit_2(_cli("evaluate", str(run)), "no held-out split")


@pytest.mark.parametrize("case, needles", [
    ("missing", ("no .parquet shards to stream",)),
    ("column", ("missing column 'item_id'", "part-0.parquet")),
    ("strings", ("column 'user_id' holds string", "part-0.parquet")),
    ("buffer", ("--buffer-rows must be at least 32",)),
])
def test_bad_input_is_one_line_exit_2(tmp_path: Path, case: str,
                                      needles: tuple[str, ...]) -> None:
    data = tmp_path / "shards"
    data.mkdir()
    columns = {"column": {"user_id": [0, 1], "item": [0, 1]},
               "strings": {"user_id": ["a", "b"], "item_id": [0, 1]}}.get(
        case, {"user_id": [0, 1], "item_id": [0, 1]})
    if case != "missing":
        pq.write_table(pa.table(columns), data / "part-0.parquet")
    extra = ("--buffer-rows", "8") if case == "buffer" else ()
    args = _train_args(data if case != "missing" else tmp_path / "nowhere", tmp_path / "run")
    _one_line_exit_2(_cli(*args, *extra), *needles)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("optimizer", ["adam", "lazy-adam"])
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path: Path,
                                                             optimizer: str) -> None:
    """Also for lazy Adam, whose state is two optimisers (rows of the tables, the rest)."""
    syn = synthesize(SynthConfig(n_items=200, n_interactions=4_000, n_users=100, n_clusters=5,
                                 shard_rows=700, seed=3), tmp_path / "syn")
    ref, run, state = tmp_path / "ref", tmp_path / "run", tmp_path / "run.state"
    common = ("--epochs", "4", "--checkpoint-every", "23", "--optimizer", optimizer)
    assert _cli(*_train_args(syn, ref, *common)).returncode == 0
    kill_after_checkpoint([sys.executable, "-m", "clusterneg.cli",
                           *_train_args(syn, run, *common)], _env(), [state])
    assert not (run / "model.safetensors").exists()
    step = step_dirs(state)[-1][0]
    steps_per_epoch = json.loads((ref / "metrics.json").read_text())["train"]["steps"] // 4
    assert step % steps_per_epoch != 0  # the stream's cursor is mid-epoch
    done = _cli(*_train_args(syn, run, *common, "--resume"))
    assert done.returncode == 0, done.stderr
    a, b = load_file(str(ref / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bitwise
    ma, mb = (json.loads((d / "metrics.json").read_text())["train"] for d in (ref, run))
    assert [e["loss"] for e in ma["curve"]] == [e["loss"] for e in mb["curve"]]
    assert ma["steps"] == mb["steps"] and ma["sampler_stats"] == mb["sampler_stats"]
    other = _cli(*_train_args(syn, tmp_path / "run2", *common, "--resume", "--state-dir",
                              str(state), "--lr", "0.01"))
    _one_line_exit_2(other, "configuration differs (train.lr)")
