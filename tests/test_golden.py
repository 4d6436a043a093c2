"""Golden behaviour: a fixed-seed run of every sampler on a small generated fixture must
reproduce the metrics recorded in ``tests/golden/compare.json`` exactly.

The fixture is the synthetic five-topic table of ``conftest.write_synthetic`` with
precomputed item vectors (a topic one-hot plus seeded noise), clustered by k-means into five
clusters, so the whole ``compare`` path runs: load -> split -> embed (precomputed) -> cluster
-> train every sampler -> full-corpus evaluation; two samplers mask their users' training
items (the per-user item-set lookup). One torch thread, fixed seeds.

The numbers were recorded before the refactor of issue 10 and must not move: a change that
moves them changes behaviour. Regenerate only for an intended behaviour change, and say so
in the commit: ``PYTHONPATH=src python tests/test_golden.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import GENRES, write_synthetic  # noqa: E402

GOLDEN = Path(__file__).parent / "golden" / "compare.json"
N_USERS, N_ITEMS = 80, 200


# The samplers recorded before the issue-10 refactor (samplers added later are not golden).
GOLDEN_SAMPLERS = ("in-batch", "mixed", "cross-batch", "dns", "ance", "goobs", "cluster-goobs")


def golden_run(tmp: Path, samplers: tuple[str, ...] = GOLDEN_SAMPLERS, jobs: int = 1) -> dict:
    """Every sampler, one seed, budget 1, two epochs, on the generated fixture."""
    import torch

    from clusterneg.compare import CompareConfig, compare
    from clusterneg.experiment import ExperimentConfig, prepare
    from clusterneg.model import ModelConfig
    from clusterneg.train.config import TrainConfig

    torch.set_num_threads(1)
    data = write_synthetic(tmp / "ds", n_users=N_USERS, n_items=N_ITEMS, per_user=14, seed=0)
    rng = np.random.default_rng(1)
    topic = np.arange(N_ITEMS) % len(GENRES)
    vecs = np.eye(len(GENRES))[topic] * 3 + rng.standard_normal((N_ITEMS, len(GENRES))) * 0.5
    emb = tmp / "emb.npy"
    np.save(emb, vecs.astype(np.float32))
    exp = ExperimentConfig(dataset=str(data), encoder=f"precomputed:{emb}", n_clusters=5,
                           cache_dir=str(tmp / "cache"))
    cfg = CompareConfig(
        samplers=list(samplers), seeds=1, budget=1,
        model=ModelConfig(dim=8, temperature=0.2, history_len=5),
        train=TrainConfig(epochs=2, batch_size=32, lr=1e-2, patience=3, threads=1),
        sampler_options={"mixed": {"n_negatives": 8, "mask_user_items": True},
                         "cross-batch": {"n_negatives": 16},
                         "dns": {"n_negatives": 4, "n_candidates": 12},
                         "ance": {"n_negatives": 4}, "goobs": {"n_negatives": 8},
                         "cluster-goobs": {"n_negatives": 8, "mask_user_items": True}},
    )
    prep = prepare(exp)
    results, raw = compare(prep, cfg, jobs=jobs)
    out: dict = {"n_clusters": results["n_clusters"], "n_train": results["n_train"],
                 "n_valid": results["n_valid"], "n_test": results["n_test"], "runs": {}}
    for row in results["runs"]:
        out["runs"][row["sampler"]] = {
            "metrics": row["metrics"], "exposure": row["exposure"], "valid": row["valid"],
            "losses": [r["loss"] for r in raw[row["sampler"]][0].train["curve"]],
            "steps": row["train"]["steps"], "sampler_stats": row["train"]["sampler_stats"],
        }
    return json.loads(json.dumps(out))  # JSON floats round-trip exactly (repr precision)


def test_every_sampler_reproduces_the_golden_metrics(tmp_path: Path) -> None:
    expected = json.loads(GOLDEN.read_text())
    got = golden_run(tmp_path)
    assert sorted(got["runs"]) == sorted(expected["runs"])
    for name in expected["runs"]:
        want, have = dict(expected["runs"][name]), dict(got["runs"][name])
        # Training losses: to 1e-6 relative. The training step embeds every candidate in one
        # item-tower call and uses fused Adam (issue 12's cost work), which reorders float
        # sums in the last bits; rankings, metrics and sampler counters stay exact.
        assert have.pop("losses") == pytest.approx(want.pop("losses"), rel=1e-6), name
        assert have == want, name
    assert {k: v for k, v in got.items() if k != "runs"} == {
        k: v for k, v in expected.items() if k != "runs"}


def test_runs_in_worker_processes_reproduce_the_golden_metrics(tmp_path: Path) -> None:
    """``compare(jobs=2)`` trains the runs in two spawned processes: the same numbers, to
    the last bit of every metric (each run seeds everything from its own seed)."""
    expected = json.loads(GOLDEN.read_text())
    names = ("in-batch", "dns", "cluster-goobs")
    got = golden_run(tmp_path, samplers=names, jobs=2)
    assert sorted(got["runs"]) == sorted(names)
    for name in names:
        want, have = dict(expected["runs"][name]), dict(got["runs"][name])
        assert have.pop("losses") == pytest.approx(want.pop("losses"), rel=1e-6), name
        assert have == want, name


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        result = golden_run(Path(d))
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
