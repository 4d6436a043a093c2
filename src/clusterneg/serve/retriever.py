"""The retrieval service's core: recommend from the ANN index, add items in real time.

``Retriever.open(run)`` loads the towers, the clusters and the index (building the default
index when none is saved), then replays the added-items log. ``recommend`` embeds the query
(a known user through the user tower, or a list of recent items through the history part of
it) and searches the index, skipping excluded and already-seen items. ``add_items`` encodes
new items like the catalog, assigns each to its nearest centroid, writes the batch durably to
the log, and only then adds it to the index, the cluster table and the GOOBS pool: the item
is retrievable as soon as the call returns, with no retraining.

One lock serialises index reads and writes (faiss indexes are not safe to search while
another thread adds to them); the log's file lock orders adds across processes, and each add
first applies what other processes (``clusterneg items add`` beside a running service)
appended, so every process numbers items the same way.

References:
    Ji et al., arXiv 2607.00448, 2026, section "Method" (new items are LLM-encoded, assigned
    to the nearest cluster online and enter the pool; the towers are unchanged).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from clusterneg import defaults as D
from clusterneg.data.user_items import UserItems
from clusterneg.encode.template import title_texts
from clusterneg.errors import ClusternegError, ConfigError
from clusterneg.index import IndexSpec, search
from clusterneg.pool import ClusterPool
from clusterneg.serve.content import ContentEncoder
from clusterneg.serve.item_log import ItemLog
from clusterneg.serve.new_items import NewItem
from clusterneg.serve.run_index import (
    DEFAULT_KIND,
    build_run_index,
    load_run_index,
    save_run_index,
)
from clusterneg.serve.run_state import RunState, load_run_state

LOG_FILE = "added_items.jsonl"
MAX_K = D.SERVE_MAX_K
MAX_QUERY_ITEMS = 1000
MAX_ADD = D.SERVE_MAX_ADD


class UnknownIdError(ClusternegError):
    """A user or item id the run does not know (HTTP 404)."""


class DuplicateItemError(ClusternegError):
    """An added item whose id already exists (HTTP 409)."""


@dataclass
class Recommendation:
    """One retrieved item."""

    item_id: str
    title: str
    score: float
    cluster: int | None
    cluster_name: str | None


@dataclass
class AddedItem:
    """Where an added item went."""

    item_id: str
    index: int
    cluster: int | None
    cluster_name: str | None


class Retriever:
    """Recommendations and real-time item additions over one run (see the module docstring).

    Args:
        state: the loaded run.
        index: a faiss index whose row i is item i (catalog items only).
        index_kind: its kind, for ``/health``.
        encoder: an item encoder to use instead of the run's (tests).
    """

    def __init__(self, state: RunState, index: Any, index_kind: str,
                 encoder: Any | None = None) -> None:
        self.state, self.index, self.index_kind = state, index, index_kind
        self.model = state.model
        ds = state.dataset
        self.item_ids: list[str] = [str(i) for i in ds.catalog.item_ids]
        self.titles: list[str] = title_texts(ds.catalog) or list(self.item_ids)
        self.item_index = {r: i for i, r in enumerate(self.item_ids)}
        self.user_index = ds.user_index()
        self.seen = UserItems.from_pairs(ds.interactions.user, ds.interactions.item,
                                        ds.n_users)
        clusters = state.clusters
        self.item_cluster = None if clusters is None else clusters.item_cluster.copy()
        self.content = (None if self.model.content.numel() == 0
                        else self.model.content.cpu().numpy())
        self.new_content: list[np.ndarray] = []
        self.pool = self._pool()
        self.encoder = (None if self.content is None else
                        ContentEncoder(state.config, ds.catalog, self.content.shape[1],
                                       encoder))
        self.log = ItemLog(state.serving_dir / LOG_FILE)
        self._lock = threading.RLock()
        self._replay()

    @classmethod
    def open(cls, run: Path, encoder: Any | None = None, kind: str | None = None
             ) -> Retriever:
        """Load ``run``; use its saved index (or build and save ``kind``, default HNSW)."""
        state = load_run_state(run)
        saved = load_run_index(state.serving_dir, state.model.n_items)
        if saved is not None and (kind is None or saved[1].get("kind") == kind):
            index, meta = saved
            return cls(state, index, str(meta.get("kind")), encoder)
        index, report = build_run_index(state.model, IndexSpec(kind or DEFAULT_KIND))
        save_run_index(state.serving_dir, index, report)
        return cls(state, index, report.kind, encoder)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_added(self) -> int:
        return len(self.item_ids) - self.model.n_items

    # ---- recommend -------------------------------------------------------------------
    def recommend(self, user: str | None = None, items: list[str] | None = None, k: int = 20,
                  exclude: list[str] | None = None) -> list[Recommendation]:
        """Top-``k`` items for a known ``user`` or for a list of recent ``items``; the user's
        seen items, the recent items and ``exclude`` are never returned."""
        if (user is None) == (not items):
            raise ConfigError("give exactly one of a user id or a non-empty list of item ids")
        k = self._check_k(k)
        if len(items or []) > MAX_QUERY_ITEMS or len(exclude or []) > MAX_QUERY_ITEMS:
            raise ConfigError(f"at most {MAX_QUERY_ITEMS} query or excluded items")
        with self._lock:
            skip = set(self._indices(exclude or [], "exclude"))
            if user is not None:
                u = self._user(user)
                query = self._user_vector(u)
                skip.update(self.seen.row(u).tolist())
            else:
                idx = self._indices(items or [], "items")
                query = self._items_vector(idx)
                skip.update(idx)
            return self._search(query, k, skip)

    def _check_k(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise ConfigError(f"k must be an integer between 1 and {MAX_K}, got {k!r}")
        return k

    def _user(self, user: str) -> int:
        u = self.user_index.get(str(user))
        if u is None:
            raise UnknownIdError(f"unknown user id {user!r} (the run has {len(self.user_index)}"
                                 " users)")
        return u

    def _indices(self, ids: list[str], what: str) -> list[int]:
        out = []
        for raw in ids:
            i = self.item_index.get(str(raw))
            if i is None:
                raise UnknownIdError(f"{what}: unknown item id {raw!r}")
            out.append(i)
        return out

    @torch.no_grad()
    def _user_vector(self, u: int) -> np.ndarray:
        return self.model.user_vectors(torch.tensor([u])).numpy()

    @torch.no_grad()
    def _items_vector(self, idx: list[int]) -> np.ndarray:
        """The user tower's history part over ``idx`` (items the model trained on); the mean
        item-tower vector when the model has no history part or all items are new."""
        known = [i for i in idx if i < self.model.n_items]
        hist = self.model.hist_emb
        if hist is not None and known:
            vec = hist.weight[torch.tensor(known)].mean(0, keepdim=True)
        else:
            vec = self._item_vectors(np.asarray(idx, np.int64)).mean(0, keepdim=True)
        return F.normalize(vec, dim=-1).numpy()

    def _search(self, query: np.ndarray, k: int, skip: set[int]) -> list[Recommendation]:
        want = min(self.index.ntotal, k + len(skip))
        if want <= 0:
            return []
        scores, ids = search(self.index, query, want)
        out = []
        for s, i in zip(scores[0].tolist(), ids[0].tolist(), strict=True):
            if i < 0 or i in skip:
                continue
            c = None if self.item_cluster is None else int(self.item_cluster[i])
            out.append(Recommendation(self.item_ids[i], self.titles[i], float(s), c,
                                      self._cluster_name(c)))
            if len(out) == k:
                break
        return out

    def _cluster_name(self, c: int | None) -> str | None:
        clusters = self.state.clusters
        return None if c is None or clusters is None else clusters.name(c)

    # ---- add items ---------------------------------------------------------------------
    def add_items(self, items: list[NewItem]) -> list[AddedItem]:
        """Encode, assign, log durably, then index ``items``; returns where each went."""
        if self.encoder is None or self.state.clusters is None:
            raise ConfigError("this run's item tower has no content path (trained with "
                              "--encoder none), so it cannot serve new items")
        if not 1 <= len(items) <= MAX_ADD:
            raise ConfigError(f"add between 1 and {MAX_ADD} items at a time, got {len(items)}")
        self._check_new_ids(items)
        rows = self.encoder.encode(items)  # slow part, outside the lock
        clusters = self.state.clusters.clusterer.assign(rows)
        with self._lock, self.log.exclusive():
            self._apply(self.log.read_new())  # items another process added meanwhile
            self._check_new_ids(items)
            start = self.n_items
            records = [{"item_id": it.item_id, "index": start + j, "title": it.title,
                        "cluster": int(c), "content": r.tolist()}
                       for j, (it, c, r) in enumerate(zip(items, clusters, rows, strict=True))]
            self.log.append(records)  # durable before anything is acknowledged
            self._apply(records)
        return [AddedItem(r["item_id"], r["index"], r["cluster"],
                          self._cluster_name(r["cluster"])) for r in records]

    def _check_new_ids(self, items: list[NewItem]) -> None:
        ids = [it.item_id for it in items]
        if len(set(ids)) != len(ids):
            raise DuplicateItemError("item ids repeat within the request")
        clash = [i for i in ids if i in self.item_index]
        if clash:
            raise DuplicateItemError(f"item id {clash[0]!r} already exists in the run")

    def _apply(self, records: list[dict[str, Any]]) -> None:
        """Add logged records to the index, the id tables, the cluster table and the pool."""
        if not records:
            return
        start = self.n_items
        for j, r in enumerate(records):
            if r["index"] != start + j:
                raise ConfigError(f"added-items log out of order at item {r['item_id']!r}")
        rows = np.asarray([r["content"] for r in records], dtype=np.float32)
        idx = np.arange(start, start + len(records))
        self.new_content.append(rows)
        vecs = self._item_vectors(idx, rows).numpy()
        self.index.add(np.ascontiguousarray(vecs, dtype=np.float32))
        for r in records:
            self.item_index[r["item_id"]] = len(self.item_ids)
            self.item_ids.append(r["item_id"])
            self.titles.append(r["title"])
        clusters = np.asarray([r["cluster"] for r in records], dtype=np.int64)
        assert self.item_cluster is not None
        self.item_cluster = np.concatenate([self.item_cluster, clusters])
        if self.pool is not None:
            self.pool.update(torch.as_tensor(idx), torch.as_tensor(clusters))

    @torch.no_grad()
    def _item_vectors(self, idx: np.ndarray, rows: np.ndarray | None = None) -> torch.Tensor:
        """Item-tower vectors; items past the catalog go through the content path."""
        t = torch.as_tensor(idx, dtype=torch.long)
        if rows is None and (t >= self.model.n_items).any():
            rows = self._content_rows(idx)
        if rows is None:
            return self.model.item_vectors(t)
        return self.model.item_vectors(t, torch.as_tensor(rows))

    def _content_rows(self, idx: np.ndarray) -> np.ndarray:
        assert self.content is not None
        extra = np.concatenate(self.new_content) if self.new_content else self.content[:0]
        table = np.concatenate([self.content, extra])
        return table[idx]

    def _replay(self) -> None:
        records = self.log.read()
        if records and self.encoder is None:
            raise ConfigError(f"{self.log.path} holds added items but the run has no content "
                              "path")
        for start in range(0, len(records), MAX_ADD):
            self._apply(records[start:start + MAX_ADD])

    def _pool(self) -> ClusterPool | None:
        """The GOOBS pool over the catalog, by cluster (new items enter it when added)."""
        if self.item_cluster is None:
            return None
        n_clusters = int(self.state.clusters.clusterer.n_clusters)  # type: ignore[union-attr]
        sizes = np.bincount(self.item_cluster, minlength=n_clusters)
        pool = ClusterPool(n_clusters, max(8, int(2 * sizes.max())))
        pool.preload(torch.arange(len(self.item_cluster)), torch.as_tensor(self.item_cluster))
        return pool

    def health(self) -> dict[str, Any]:
        """Counts for ``GET /health``."""
        with self._lock:
            return self._health()

    def _health(self) -> dict[str, Any]:
        return {"status": "ok", "items": self.n_items, "added_items": self.n_added,
                "users": len(self.user_index), "index": self.index_kind,
                "index_size": int(self.index.ntotal),
                "pool_filled": None if self.pool is None else self.pool.n_filled}

