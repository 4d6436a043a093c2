"""Load a saved run directory back into a model and re-evaluate it.

A run stores the model weights (safetensors, including the content and history buffers) and
the configuration that produced it; the dataset and split are rebuilt deterministically from
that configuration (the same split seed gives the same split).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from clusterneg.errors import DataError
from clusterneg.experiment import ExperimentConfig, Prepared, evaluate_model, prepare
from clusterneg.model import ModelConfig, TwoTower
from clusterneg.train.checkpoint import load_checkpoint
from clusterneg.train.config import TrainConfig
from clusterneg.train.trainer import build_model


def load_run(run_dir: Path, prep: Prepared | None = None) -> tuple[TwoTower, Prepared, dict]:
    """(model with the saved weights, the rebuilt data, the saved config)."""
    state, config, _ = load_checkpoint(run_dir)
    try:
        exp = ExperimentConfig(**config["experiment"])
        model_cfg = ModelConfig(**config["model"])
        train_cfg = TrainConfig(**_renamed(config["train"], logq="logq_correction"))
    except (KeyError, TypeError) as exc:
        raise DataError(Path(run_dir) / "config.json", f"unexpected config layout: {exc}") from None
    prep = prep if prep is not None else prepare(exp)
    use_content = "content" in state and state["content"].numel() > 0
    model = build_model(prep.train_data(use_content), model_cfg, train_cfg.seed)
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("extra.")})
    model.eval()
    return model, prep, config


def evaluate_run(
    run_dir: Path, part: str = "test", save_topk: Path | None = None, k: int = 100,
) -> Any:
    """Evaluate a saved run on ``part`` and optionally write each user's top-k as Parquet."""
    if part not in ("test", "valid"):
        raise DataError(run_dir, f"--split must be 'test' or 'valid', got '{part}'")
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
