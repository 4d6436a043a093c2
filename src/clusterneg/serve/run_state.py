"""What serving needs from a run directory, read without retraining or unpickling.

The towers are rebuilt straight from ``model.safetensors`` (the content features and the
users' histories are buffers in it, so the item and user towers need no data pipeline); the
clusters come from the ``extra.centroids`` / ``extra.item_cluster`` tensors a run keeps
(older runs without them fall back to re-running the seeded data preparation); titles and
each user's seen items come from the dataset the run's config names.

References:
    Ji et al., arXiv 2607.00448, 2026, section "Method" (two towers unchanged at serving; new
    items go to the nearest cluster centroid).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clusterneg.cluster.kmeans import Clusterer
from clusterneg.data.dataset import Dataset
from clusterneg.errors import DataError
from clusterneg.model import ModelConfig, TwoTower
from clusterneg.train.checkpoint import load_checkpoint

SERVING_DIR = "serving"


def model_from_state(state: dict[str, torch.Tensor], config: dict[str, Any], run: Path
                     ) -> TwoTower:
    """The trained :class:`TwoTower` from its saved tensors (sizes read off the weights)."""
    try:
        cfg = ModelConfig(**config["model"])
    except (KeyError, TypeError) as exc:
        raise DataError(Path(run) / "config.json", f"unexpected model config: {exc}") from None
    content = state.get("content")
    content = content if content is not None and content.numel() > 0 else None
    history = state.get("history")
    history = history if history is not None and history.numel() > 0 else None
    if "item_emb.weight" in state:
        n_items = state["item_emb.weight"].shape[0]
    elif content is not None:
        n_items = content.shape[0]
    else:
        raise DataError(run, "model.safetensors has neither item embeddings nor content")
    n_users = (state["user_emb.weight"].shape[0] if "user_emb.weight" in state
               else history.shape[0] if history is not None else 0)
    model = TwoTower(cfg, n_users, n_items, content=content, history=history)
    try:
        model.load_state_dict({k: v for k, v in state.items() if not k.startswith("extra.")})
    except RuntimeError as exc:
        raise DataError(Path(run) / "model.safetensors",
                        f"weights do not fit the saved config: {str(exc).splitlines()[0]}"
                        ) from None
    return model.eval()


@dataclass
class RunClusters:
    """The run's clusters: centroids (``assign`` for new items), each item's id, names.

    Args:
        clusterer: a fitted :class:`Clusterer` over the run's content space.
        item_cluster: int64 [n_items] cluster of each catalog item.
        names: one short name per cluster, or None.
    """

    clusterer: Clusterer
    item_cluster: np.ndarray
    names: list[str] | None = None

    def name(self, cluster: int) -> str | None:
        if self.names is None or not 0 <= cluster < len(self.names):
            return None
        return self.names[cluster]


@dataclass
class RunState:
    """A run, loaded for serving.

    Args:
        run: the run directory.
        model: the trained towers (eval mode).
        config: the saved config.json.
        dataset: the run's dataset (titles, user ids, interactions).
        clusters: None for runs without content clusters (``--encoder none``).
    """

    run: Path
    model: TwoTower
    config: dict[str, Any]
    dataset: Dataset
    clusters: RunClusters | None

    @property
    def serving_dir(self) -> Path:
        return self.run / SERVING_DIR


def load_run_state(run: Path) -> RunState:
    """Read everything serving needs from ``run`` (DataError when it is not a usable run)."""
    from clusterneg.data.load import load_dataset

    run = Path(run)
    state, config, _ = load_checkpoint(run)
    model = model_from_state(state, config, run)
    exp = config.get("experiment", {})
    dataset = load_dataset(exp.get("dataset", ""))
    if dataset.n_items != model.n_items:
        raise DataError(run, f"the run was trained on {model.n_items} items but its dataset "
                        f"{exp.get('dataset')!r} now has {dataset.n_items}")
    return RunState(run, model, config, dataset, _clusters(run, state, config))


def _clusters(run: Path, state: dict[str, torch.Tensor], config: dict[str, Any]
              ) -> RunClusters | None:
    exp = config.get("experiment", {})
    if exp.get("encoder", "none") == "none":
        return None
    names = config.get("cluster_names")
    if "extra.centroids" in state and "extra.item_cluster" in state:
        km = Clusterer(int(state["extra.centroids"].shape[0]))
        km._set_centroids(state["extra.centroids"].numpy())
        return RunClusters(km, state["extra.item_cluster"].numpy().astype(np.int64), names)
    # An older run that did not keep its centroids: the preparation is seeded, so re-running
    # it gives the clusters the run was trained with.
    from clusterneg.experiment import ExperimentConfig, prepare

    prep = prepare(ExperimentConfig(**exp))
    info = prep.cluster_info
    return RunClusters(info.clusterer, np.asarray(info.item_cluster, np.int64),
                       names or info.names)
