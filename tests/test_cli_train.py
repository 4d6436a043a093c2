"""The train / evaluate / compare commands through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path


def test_train_then_evaluate(synthetic_dir: Path, tmp_path: Path, cli_run) -> None:
    run = tmp_path / "r"
    code, out, _ = cli_run("train", "--dataset", str(synthetic_dir), "--encoder", "none",
                         "--epochs", "2", "--batch-size", "32", "--dim", "8",
                         "--out", str(run))
    assert code == 0 and "hr@50" in out and (run / "model.safetensors").exists()
    code, out, _ = cli_run("evaluate", str(run), "--save-topk", str(tmp_path / "t.parquet"))
    assert code == 0 and (tmp_path / "t.parquet").exists()


def test_unknown_sampler_is_one_line_exit_2(synthetic_dir: Path, tmp_path: Path, cli_run) -> None:
    code, _, err = cli_run("train", "--dataset", str(synthetic_dir), "--encoder", "none",
                         "--sampler", "nope", "--out", str(tmp_path / "x"))
    assert code == 2
    assert err.count("\n") == 1 and "nope" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_evaluate_a_directory_that_is_not_a_run(tmp_path: Path, cli_run) -> None:
    code, _, err = cli_run("evaluate", str(tmp_path))
    assert code == 2 and "model.safetensors" in err


def test_compare_writes_the_three_files(synthetic_dir: Path, tmp_path: Path, cli_run) -> None:
    out = tmp_path / "cmp"
    code, stdout, _ = cli_run("compare", "--dataset", str(synthetic_dir), "--encoder", "none",
                            "--samplers", "in-batch,mixed", "--seeds", "2", "--epochs", "2",
                            "--batch-size", "32", "--dim", "8", "--out", str(out))
    assert code == 0, stdout
    results = json.loads((out / "results.json").read_text())
    assert {r["sampler"] for r in results["runs"]} == {"in-batch", "mixed"}
    assert len(results["runs"]) == 4
    for key in ("dataset", "split", "n_users", "n_items", "n_train", "n_test", "summary"):
        assert key in results
    run = results["runs"][0]
    assert {"hr@10", "hr@50", "hr@100", "recall@20", "recall@50", "ndcg@10", "mrr"} <= set(
        run["metrics"])
    assert {"top100_share", "coverage@50", "gini@50", "tail_share@50"} <= set(run["exposure"])
    assert {"seconds", "examples_per_s"} <= set(run["train"])
    assert (out / "results.md").exists() and (out / "report.html").exists()
    assert "report:" in stdout
