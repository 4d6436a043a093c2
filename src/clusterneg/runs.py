"""Load a saved run directory back into a model and re-evaluate it.

A run stores the model weights (safetensors, including the content and history buffers) and
the configuration that produced it; the dataset and split are rebuilt deterministically from
that configuration (the same split seed gives the same split).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from clusterneg.errors import ConfigError, DataError
from clusterneg.eval.metrics import DEFAULT_KS as KS
from clusterneg.experiment import ExperimentConfig, Prepared, evaluate_model, prepare
from clusterneg.model import ModelConfig, TwoTower
from clusterneg.train.checkpoint import load_checkpoint
from clusterneg.train.config import TrainConfig
from clusterneg.train.trainer import build_model

MAX_K = max(KS)


def load_run(run_dir: Path, prep: Prepared | None = None) -> tuple[TwoTower, Prepared, dict]:
    """(model with the saved weights, the rebuilt data, the saved config).

    Raises:
        DataError: a damaged run, or a dataset whose fingerprint differs from the one the run
            was trained on (items permuted, rows added or removed).
    """
    state, config, _ = load_checkpoint(run_dir)
    if "stream" in config:
        raise DataError(Path(run_dir) / "config.json", "a streamed run (train-stream) trained "
                        "on every row of its data: there is no held-out split to evaluate")
    try:
        exp = ExperimentConfig(**config["experiment"])
        model_cfg = ModelConfig(**config["model"])
        train_cfg = TrainConfig(**_renamed(config["train"], logq="logq_correction"))
    except (KeyError, TypeError) as exc:
        raise DataError(Path(run_dir) / "config.json", f"unexpected config layout: {exc}") from None
    if prep is None:
        check_same_dataset(run_dir, config, exp.dataset)
        prep = prepare(exp)
    use_content = "content" in state and state["content"].numel() > 0
    model = build_model(prep.train_data(use_content), model_cfg, train_cfg.seed)
    try:
        model.load_state_dict({k: v for k, v in state.items() if not k.startswith("extra.")})
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1].strip()
        raise DataError(Path(run_dir) / "model.safetensors",
                        f"weights do not fit the dataset and config: {first}") from None
    model.eval()
    return model, prep, config


def check_same_dataset(run_dir: Path, config: dict[str, Any], dataset: str) -> None:
    """Refuse to evaluate a run on data other than the data it was trained on."""
    from clusterneg.data.load import load_dataset
    from clusterneg.provenance import dataset_fingerprint

    recorded = (config.get("provenance") or {}).get("dataset_fingerprint")
    if recorded is None:
        return  # runs written before fingerprints were recorded
    now = dataset_fingerprint(load_dataset(dataset))
    if now != recorded:
        raise DataError(dataset, f"dataset differs from the one run {run_dir} was trained on "
                                 f"(fingerprint {now}, recorded {recorded})")


def evaluate_run(
    run_dir: Path, part: str = "test", save_topk: Path | None = None, k: int = 100,
) -> Any:
    """Evaluate a saved run on ``part`` and optionally write each user's top-k as Parquet."""
    if part not in ("test", "valid"):
        raise ConfigError(f"--split must be 'test' or 'valid', got '{part}'")
    if not 1 <= k <= MAX_K:
        raise ConfigError(f"--k must be between 1 and {MAX_K} (the longest list evaluated), "
                          f"got {k}")
    model, prep, _ = load_run(run_dir)
    ev = evaluate_model(model, prep, part)
    if save_topk is not None:
        from clusterneg.eval.topk_parquet import save_topk_parquet

        users = np.asarray(ev.users)
        save_topk_parquet(save_topk, prep.dataset.user_ids[users], prep.dataset.catalog.item_ids,
                          ev.topk[:, :k], None if ev.scores is None else ev.scores[:, :k])
    return ev


def _renamed(options: dict, **old_to_new: str) -> dict:
    """Options saved by an older version, with renamed keys under their new names."""
    return {old_to_new.get(k, k): v for k, v in options.items()}
