"""``clusterneg ladder`` through the real CLI entry point (issue 11, step 2), on the shared
synthetic dataset with precomputed item vectors (no model loads)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.conftest import GENRES


@pytest.fixture
def vectors(synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One blob per topic for the 50 synthetic items (topic = item index mod 5)."""
    monkeypatch.setenv("CLUSTERNEG_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    topic = np.arange(50) % len(GENRES)
    vecs = np.eye(len(GENRES))[topic] * 5 + rng.standard_normal((50, len(GENRES))) * 0.3
    path = tmp_path / "emb.parquet"
    pq.write_table(pa.table({"item_id": [f"i{j}" for j in range(50)],
                             "vector": vecs.tolist()}), path)
    return path


def test_ladder_runs_every_rung_with_paired_changes(synthetic_dir: Path, vectors: Path,
                                                     tmp_path: Path, cli_run) -> None:
    out = tmp_path / "ladder"
    code, stdout, err = cli_run(
        "ladder", "--dataset", str(synthetic_dir), "--encoder", f"precomputed:{vectors}",
        "--n-clusters", "5", "--protocol", "paper", "--full", "--epochs", "2",
        "--batch-size", "32", "--dim", "8", "--history-len", "3", "--no-user-id",
        "--out", str(out))
    assert code == 0, err
    doc = json.loads((out / "ladder.json").read_text())
    assert doc["model"]["user_id"] is False
    labels = [r["label"] for r in doc["rungs"]]
    assert labels == ["in-batch, no logQ", "+ logQ", "+ uniform negatives (goobs)",
                      "+ same-cluster negatives (cluster-goobs)", "exact softmax (full)"]
    assert [r["logq"] for r in doc["rungs"]] == [False, True, True, True, False]
    assert doc["experiment"]["use_content"] is False  # the paper protocol: ID-only towers
    assert doc["sampler_options"]["cluster-goobs"] == {"ratio": "1:31", "n_negatives": 32}
    assert doc["rungs"][0]["change_from_previous"] == {}
    for rung in doc["rungs"][1:]:
        ch = rung["change_from_previous"]["hr@50"]
        assert ch["rel_ci_low"] <= ch["rel"] <= ch["rel_ci_high"]
    # the change from the first rung compounds the steps' means (same users, one seed)
    first = doc["rungs"][0]["metrics"]["hr@50"]
    last = doc["rungs"][3]
    if first > 0:
        assert last["change_from_first"]["hr@50"]["rel"] == pytest.approx(
            last["metrics"]["hr@50"] / first - 1, abs=1e-9)
    text = (out / "ladder.md").read_text()
    assert text.count("\n| ") == 6 and "| + logQ | " in text and stdout.strip()


def test_unknown_protocol_is_one_line_exit_2(synthetic_dir: Path, tmp_path: Path,
                                             cli_run) -> None:
    for cmd in ("ladder", "compare"):
        code, _, err = cli_run(cmd, "--dataset", str(synthetic_dir), "--encoder", "none",
                               "--protocol", "nope", "--out", str(tmp_path / cmd))
        assert code == 2 and err.count("\n") == 1 and "--protocol" in err, err


def test_compare_reports_the_headroom_next_to_each_gain(
    synthetic_dir: Path, vectors: Path, tmp_path: Path, cli_run, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # no LLM in a unit test: cluster names are only for the report
    monkeypatch.setattr("clusterneg.cluster.pipeline.names_for",
                        lambda dataset, emb, result, *a, **k: [
                            f"c{i}" for i in range(result.n_clusters)])
    out = tmp_path / "cmp"
    code, _, err = cli_run(
        "compare", "--dataset", str(synthetic_dir), "--encoder", f"precomputed:{vectors}",
        "--n-clusters", "5", "--no-names", "--samplers", "in-batch,full,cluster-dns,"
        "cluster-follow", "--epochs", "1", "--batch-size", "32", "--dim", "8",
        "--history-len", "0", "-o", "cluster-follow:recluster_every=5", "--out", str(out))
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    h = results["headroom"]
    assert h["reference"] == "full" and set(h["samplers"]) == {"cluster-dns", "cluster-follow"}
    text = (out / "results.md").read_text()
    assert "## Headroom over in-batch (HR@50)" in text and "| cluster-dns |" in text
    stats = next(r for r in results["runs"] if r["sampler"] == "cluster-follow")["train"][
        "sampler_stats"]
    assert stats["recluster/count"] >= 1  # the clusters were re-fit during training
