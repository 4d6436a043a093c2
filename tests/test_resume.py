"""Checkpoint and resume: a run killed with SIGKILL mid-epoch and resumed ends exactly where
an uninterrupted run with the same seed ends (same weights, same metrics)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tests.conftest import GENRES, write_synthetic
from tests.kill_helpers import kill_after_checkpoint

from clusterneg.train.state import flatten, latest_state, save_state, step_dirs, unflatten

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _fixture(tmp_path: Path) -> tuple[Path, Path]:
    data = write_synthetic(tmp_path / "data", n_users=200, n_items=100, per_user=12)
    rng = np.random.default_rng(0)
    topic = np.arange(100) % len(GENRES)  # same topics as write_synthetic's items
    emb = np.eye(len(GENRES))[topic] + 0.05 * rng.standard_normal((100, len(GENRES)))
    np.save(tmp_path / "emb.npy", emb.astype(np.float32))
    return data, tmp_path / "emb.npy"


def _cmd(data: Path, emb: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "clusterneg.cli", "train", "--dataset", str(data),
            "--encoder", f"precomputed:{emb}", "--n-clusters", "5", "--sampler",
            "cluster-goobs", "-o", "n_negatives=8", "--epochs", "2", "--batch-size", "16",
            "--dim", "8", "--history-len", "5", "--seed", "3", "--out", str(out), *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path: Path) -> None:
    data, emb = _fixture(tmp_path)
    ref, run = tmp_path / "ref", tmp_path / "run"
    subprocess.run(_cmd(data, emb, ref), env=_env(), check=True, capture_output=True)
    state = tmp_path / "run.state"
    kill_after_checkpoint(_cmd(data, emb, run, "--checkpoint-every", "25"), _env(), [state])
    assert not (run / "model.safetensors").exists()
    step = step_dirs(state)[-1][0]
    steps_per_epoch = json.loads((ref / "metrics.json").read_text())["train"]["steps"] // 2
    assert step % steps_per_epoch != 0  # killed mid-epoch
    done = subprocess.run(_cmd(data, emb, run, "--checkpoint-every", "25", "--resume"),
                          env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    a, b = load_file(str(ref / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)  # bitwise
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (ref, run))
    assert ma["test"] == mb["test"] and ma["valid"] == mb["valid"]
    assert ma["train"]["steps"] == mb["train"]["steps"]


def test_resume_with_other_options_is_one_line_exit_2(tmp_path: Path, cli_run) -> None:
    data, emb = _fixture(tmp_path)
    args = _cmd(data, emb, tmp_path / "run", "--checkpoint-every", "50")[3:]
    args[args.index("--epochs") + 1] = "1"
    assert cli_run(*args)[0] == 0
    args[args.index("--seed") + 1] = "4"
    code, _, err = cli_run(*args, "--resume")
    assert code == 2 and "configuration differs (train.seed)" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_resume_without_state_is_one_line_exit_2(tmp_path: Path, cli_run) -> None:
    code, _, err = cli_run("train", "--dataset", str(tmp_path), "--resume",
                           "--out", str(tmp_path / "r"))
    assert code == 2 and "no checkpoint to resume from" in err


def test_flatten_round_trip_keeps_types() -> None:
    opt = torch.optim.Adam([torch.nn.Parameter(torch.ones(3))])
    state = {"opt": opt.state_dict(), "np": np.arange(4, dtype=np.uint32), "nan": float("nan"),
             "t": (1, [torch.zeros(2, dtype=torch.uint8)], None)}
    back = unflatten(*flatten(state))
    assert back["opt"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert back["np"].dtype == np.uint32 and back["np"].tolist() == [0, 1, 2, 3]
    assert np.isnan(back["nan"]) and back["t"][0] == 1 and back["t"][2] is None
    assert back["t"][1][0].dtype == torch.uint8


def test_only_complete_checkpoints_count_and_old_ones_are_pruned(tmp_path: Path) -> None:
    (tmp_path / ".step-000000009.tmp-x").mkdir()  # a crash while writing leaves only this
    with pytest.raises(Exception, match="no checkpoint"):
        latest_state(tmp_path)
    for step in (1, 2, 3):
        save_state(tmp_path, step, {"w": torch.full((2,), float(step))})
    assert [s for s, _ in step_dirs(tmp_path)] == [2, 3]
    assert latest_state(tmp_path).name == "step-000000003"
