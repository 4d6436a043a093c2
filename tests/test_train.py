"""Training end to end on a small synthetic dataset: learning happens, early stopping keeps
the best validation epoch, runs are atomic and reload to the same metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clusterneg.experiment import ExperimentConfig, evaluate_model, prepare, run
from clusterneg.model import ModelConfig
from clusterneg.outputs import write_run_dir
from clusterneg.runs import evaluate_run, load_run
from clusterneg.train.config import TrainConfig


def _prep(path: Path):
    return prepare(ExperimentConfig(dataset=str(path), encoder="none"))


def test_training_beats_an_untrained_model(synthetic_dir: Path) -> None:
    prep = _prep(synthetic_dir)
    mc = ModelConfig(dim=16, temperature=0.1, history_len=10)
    untrained = run(prep, mc, TrainConfig(epochs=1, max_steps=1, lr=1e-6, batch_size=32))
    trained = run(prep, mc, TrainConfig(epochs=15, batch_size=32, lr=1e-2, patience=15))
    # users favour one topic of five: a trained model ranks their topic first
    assert trained.metrics["hr@10"] > untrained.metrics["hr@10"] + 0.15
    assert trained.train["examples_per_s"] > 0


def test_best_epoch_is_restored(synthetic_dir: Path) -> None:
    prep = _prep(synthetic_dir)
    res = run(prep, ModelConfig(dim=16, history_len=0), TrainConfig(epochs=6, batch_size=32,
                                                                    lr=5e-2, patience=6),
              keep_model=True)
    curve = [r["valid"]["recall@50"] for r in res.train["curve"]]
    assert res.train["best_epoch"] == int(np.argmax(curve))
    again = evaluate_model(res.model, prep, "valid").summary["recall@50"]
    assert again == pytest.approx(max(curve))


def test_run_dir_round_trip_and_topk_parquet(synthetic_dir: Path, tmp_path: Path) -> None:
    prep = _prep(synthetic_dir)
    out = tmp_path / "run"
    res = run(prep, ModelConfig(dim=8, history_len=5), TrainConfig(epochs=2, batch_size=32),
              out_dir=out)
    assert sorted(p.name for p in out.iterdir()) == [".clusterneg-run", "config.json",
                                                     "metrics.json", "model.safetensors"]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test"]["hr@50"] == pytest.approx(res.metrics["hr@50"])
    ev = evaluate_run(out, save_topk=tmp_path / "topk.parquet", k=20)
    assert ev.summary["hr@50"] == pytest.approx(res.metrics["hr@50"])
    from clusterneg.eval.topk_parquet import metrics_from_topk_parquet

    test = prep.split.test
    again = metrics_from_topk_parquet(tmp_path / "topk.parquet", prep.dataset.user_ids[test.user],
                                      prep.dataset.catalog.item_ids[test.item], ks=(10, 20))
    assert again.summary["hr@10"] == pytest.approx(ev.summary["hr@10"])
    model, _, config = load_run(out)
    assert config["train"]["sampler"] == "in-batch"


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    def boom(tmp: Path) -> None:
        (tmp / "half.json").write_text("{")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_run_dir(tmp_path / "run", boom, kind="train")
    assert list(tmp_path.iterdir()) == []
