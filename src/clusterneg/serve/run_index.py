"""``clusterneg index RUN``: the item tower's vectors in a faiss index saved beside the run,
with its recall@100 against exact search measured on the run's own users.

Files (``RUN/serving/``): ``index.faiss`` (faiss's format, written atomically) and
``index.json`` (kind, knobs, item count, recall, build time). The saved index holds the
catalog items only; items added later are replayed from the added-items log on load.

References:
    Ji et al., arXiv 2607.00448, 2026, section "Method" (serving is unchanged: ANN search
    over the item tower's outputs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clusterneg import defaults as D
from clusterneg.index import IndexSpec, build_index, load_index, recall_at_k, save_index, search
from clusterneg.model import TwoTower
from clusterneg.train.checkpoint import write_json

INDEX_FILE = "index.faiss"
INDEX_META = "index.json"
DEFAULT_KIND = D.INDEX_KIND
RECALL_K = 100


@dataclass
class IndexReport:
    """How an index was built and how close it is to exact search."""

    kind: str
    n_items: int
    recall: float
    k: int
    n_queries: int
    build_seconds: float
    spec: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@torch.no_grad()
def item_matrix(model: TwoTower) -> np.ndarray:
    """float32 [N, d] unit item-tower vectors of every catalog item."""
    return model.all_item_vectors().cpu().numpy().astype(np.float32)


@torch.no_grad()
def user_queries(model: TwoTower, n: int = 1000, seed: int = 0) -> np.ndarray:
    """float32 [min(n, U), d] user-tower vectors of a seeded sample of users."""
    n_users = model.n_users
    rng = np.random.default_rng(seed)
    users = np.sort(rng.choice(n_users, min(n, n_users), replace=False))
    return model.user_vectors(torch.as_tensor(users)).cpu().numpy().astype(np.float32)


def build_run_index(model: TwoTower, spec: IndexSpec, n_queries: int = 1000
                    ) -> tuple[Any, IndexReport]:
    """(index over the catalog items, its recall@100 against exact on sampled users)."""
    items = item_matrix(model)
    t0 = time.perf_counter()
    index = build_index(items, spec)
    seconds = time.perf_counter() - t0
    queries = user_queries(model, n_queries)
    k = min(RECALL_K, len(items))
    exact = build_index(items, IndexSpec("exact")) if spec.kind != "exact" else index
    recall = recall_at_k(search(index, queries, k)[1], search(exact, queries, k)[1], k)
    return index, IndexReport(spec.kind, len(items), recall, k, len(queries), seconds,
                              spec.to_dict())


def save_run_index(serving_dir: Path, index: Any, report: IndexReport) -> Path:
    """Write ``index.faiss`` then ``index.json`` (each atomically)."""
    path = save_index(index, Path(serving_dir) / INDEX_FILE)
    write_json(Path(serving_dir) / INDEX_META, report.to_dict())
    return path


def load_run_index(serving_dir: Path, n_items: int) -> tuple[Any, dict[str, Any]] | None:
    """The saved index and its metadata, or None when absent or built for another catalog."""
    import json

    path, meta_path = Path(serving_dir) / INDEX_FILE, Path(serving_dir) / INDEX_META
    if not (path.is_file() and meta_path.is_file()):
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    index = load_index(path)
    if index.ntotal != n_items or meta.get("n_items") != n_items:
        return None
    return index, meta
