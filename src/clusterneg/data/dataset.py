"""In-memory interaction data and item catalog, with contiguous integer ids.

Every loader (``clusterneg.data.loaders``) produces a :class:`Dataset`: users and items are
mapped to contiguous indices ``0..n-1`` (``user_ids[i]`` / ``catalog.item_ids[j]`` give the
raw ids back), interactions are parallel numpy arrays, and the catalog holds the item text
fields the encoders turn into content embeddings (PAPER.md, "LLM item representations").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Interactions:
    """Parallel arrays of (user, item, order, weight), one row per interaction.

    Args:
        user: int64 [n] contiguous user indices.
        item: int64 [n] contiguous item indices.
        order: float64 [n] timestamp, or position in the user's sequence; NaN when unknown.
        weight: float32 [n] interaction weight (1.0 when the data has none).
    """

    user: np.ndarray
    item: np.ndarray
    order: np.ndarray
    weight: np.ndarray

    def __post_init__(self) -> None:
        self.user = np.asarray(self.user, dtype=np.int64)
        self.item = np.asarray(self.item, dtype=np.int64)
        n = len(self.user)
        self.order = (
            np.full(n, np.nan) if self.order is None else np.asarray(self.order, np.float64)
        )
        self.weight = (
            np.ones(n, np.float32) if self.weight is None else np.asarray(self.weight, np.float32)
        )
        if not (len(self.item) == len(self.order) == len(self.weight) == n):
            raise ValueError("Interactions arrays must have the same length")

    def __len__(self) -> int:
        return len(self.user)

    @property
    def has_order(self) -> bool:
        return len(self) > 0 and not np.isnan(self.order).all()

    def subset(self, mask_or_index: np.ndarray) -> Interactions:
        """Rows selected by a boolean mask or an index array."""
        return Interactions(
            self.user[mask_or_index],
            self.item[mask_or_index],
            self.order[mask_or_index],
            self.weight[mask_or_index],
        )

    @staticmethod
    def concat(parts: list[Interactions]) -> Interactions:
        return Interactions(
            np.concatenate([p.user for p in parts]),
            np.concatenate([p.item for p in parts]),
            np.concatenate([p.order for p in parts]),
            np.concatenate([p.weight for p in parts]),
        )


@dataclass
class Catalog:
    """Item id -> text fields.

    Args:
        item_ids: raw item ids (str) [n_items]; index j is item j.
        fields: text field name -> list of n_items strings ("" when missing).
        category_field: name of the field holding categories/genres (for cluster NMI), if any.
    """

    item_ids: np.ndarray
    fields: dict[str, list[str]] = field(default_factory=dict)
    category_field: str | None = None

    def __len__(self) -> int:
        return len(self.item_ids)

    def texts(self, template: list[str] | None = None, sep: str = ". ") -> list[str]:
        """One string per item: the non-empty fields of ``template`` (default: all), joined."""
        names = template if template is not None else list(self.fields)
        out = []
        for j in range(len(self)):
            parts = [str(self.fields[n][j]).strip() for n in names if n in self.fields]
            out.append(sep.join(p for p in parts if p))
        return out

    def categories(self) -> list[list[str]] | None:
        """Per item, its category labels (split on '|' or ','), if the data has any."""
        if self.category_field is None or self.category_field not in self.fields:
            return None
        out = []
        for v in self.fields[self.category_field]:
            sep = "|" if "|" in v else ","
            out.append([c.strip() for c in str(v).split(sep) if c.strip()])
        return out


@dataclass
class Dataset:
    """Interactions + catalog + id maps; optionally a split that came with the data.

    Args:
        name: dataset name ("ml-100k", a directory name, ...).
        user_ids: raw user ids (str) [n_users].
        catalog: the item catalog (defines n_items and the item index).
        interactions: all interactions (for a pre-split dataset: train + valid + test).
        presplit: ``{"train", "test", optional "valid"}`` when the data came already split.
        source: where it was read from (for messages and reports).
    """

    name: str
    user_ids: np.ndarray
    catalog: Catalog
    interactions: Interactions
    presplit: dict[str, Interactions] | None = None
    source: str = ""

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.catalog)

    def item_index(self) -> dict[str, int]:
        """Raw item id -> contiguous index."""
        return {str(r): i for i, r in enumerate(self.catalog.item_ids)}

    def user_index(self) -> dict[str, int]:
        """Raw user id -> contiguous index."""
        return {str(r): i for i, r in enumerate(self.user_ids)}

    def item_popularity(self, inter: Interactions | None = None) -> np.ndarray:
        """Interaction count per item, int64 [n_items]."""
        inter = self.interactions if inter is None else inter
        return np.bincount(inter.item, minlength=self.n_items).astype(np.int64)
