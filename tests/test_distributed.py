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

from clusterneg.data.synth import SynthConfig, synthesize

SRC = str(Path(__file__).resolve().parents[1] / "src")


def test_two_ranks_hold_the_same_pool_and_weights_and_learn(tmp_path: Path) -> None:
    data = synthesize(SynthConfig(n_items=400, n_interactions=12_000, n_users=200,
                                  n_clusters=8, shard_rows=1_500, seed=1), tmp_path / "d")
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--standalone", "-m", "clusterneg.train.distributed", str(data), "--out",
           str(out), "--batch-size", "48", "--steps", "80", "--negatives", "8"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    pools = [load_file(str(out / f"pool-rank{r}.safetensors")) for r in (0, 1)]
    assert torch.equal(pools[0]["item_ids"], pools[1]["item_ids"])
    assert torch.equal(pools[0]["written"], pools[1]["written"])
    assert int(pools[0]["written"].max()) == 79  # written by the last step's global batch
    assert ranks[0]["weights_checksum"] == ranks[1]["weights_checksum"]  # DDP kept them equal
    for r in ranks:
        assert r["steps"] == 80 and r["world"] == 2
        assert np.mean(r["losses"][-10:]) < np.mean(r["losses"][:10])
    assert ranks[0]["losses"] != ranks[1]["losses"]  # each rank trains on its own data
    assert (out / "model" / "model.safetensors").exists()
