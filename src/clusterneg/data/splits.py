"""Seeded train / validation / test splits of a :class:`Dataset`, and per-user item sets.

Methods (``make_split(method=...)``):

- ``leave-last-out`` (default where the data has an order): per user, the last interaction
  by order goes to test and the second-last to validation; ties in order are broken by
  position in the data. Users with fewer than 3 interactions (2 without validation) keep
  everything in train.
- ``random``: per user, a seeded shuffle, then the first share to train, the next to
  validation, the rest to test. Counts follow RecBole's ``split_by_ratio`` rule (each holdout
  part gets ``floor(ratio * n)`` rows, and one row when ``0 < ratio * n < 1`` as long as
  train keeps at least 2), so "random 80/10/10 per user" matches RecBole's ``RS`` setting.
- ``temporal``: one global cut by order quantile: rows at or after quantile ``cut[0]`` go to
  validation, at or after ``cut[1]`` to test, so every train row is strictly earlier than
  every validation / test row. Needs a real timestamp to be meaningful (LC-Rec orders are
  positions within each user's list).
- ``presplit``: the split that came with the data (``Dataset.presplit``); a missing
  validation part is carved from train by leave-last-out (data with order) or random.

Without validation (``valid=False``) its share stays in train. Repeated (user, item) pairs
are kept as they are in every part (train may use repeats as extra signal); evaluation treats
each user's targets as a set (:class:`clusterneg.data.user_items.UserItems`). Evaluation
never tunes on test: tune on ``valid``, whose masking history is ``train`` only.

References:
    The paper clusterneg implements, arXiv 2607.00448, "Reported results" (global HR@K over
    the whole corpus); Zhao et al., RecBole (CIKM 2021), ``Dataset.split_by_ratio``.

Example:
    >>> from clusterneg.data import load_dataset
    >>> split = make_split(load_dataset("ml-100k"), method="random", seed=0)
    >>> split.describe()["n_test"] > 0
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clusterneg.data.dataset import Dataset, Interactions
from clusterneg.errors import ConfigError, DataError

TRAIN, VALID, TEST = 0, 1, 2
METHODS = ("auto", "leave-last-out", "random", "temporal", "presplit")


@dataclass
class Split:
    """Train / validation / test interactions of one dataset.

    Args:
        train: interactions to fit on.
        valid: interactions to tune and early-stop on (may be empty).
        test: interactions reported once, never tuned on.
        method: the method that made the split ("leave-last-out", "random", ...).
        seed: the seed used (recorded even when the method is deterministic).
        valid_from: where validation came from ("split", "file", "leave-last-out",
            "random" carved from a pre-split train, or "none").
    """

    train: Interactions
    valid: Interactions
    test: Interactions
    method: str
    seed: int
    valid_from: str = "split"

    def describe(self) -> dict[str, object]:
        """Sizes and sanity counts, JSON-ready (for reports and run metadata)."""
        train_users = np.unique(self.train.user)
        out: dict[str, object] = {"method": self.method, "seed": self.seed,
                                  "valid_from": self.valid_from}
        for name, part in (("train", self.train), ("valid", self.valid), ("test", self.test)):
            out[f"n_{name}"] = len(part)
            out[f"users_{name}"] = int(len(np.unique(part.user)))
        out["test_users_without_train"] = int(
            (~np.isin(np.unique(self.test.user), train_users)).sum()
        )
        out["test_pairs_in_train"] = _pairs_in(self.test, self.train)
        return out


def make_split(
    dataset: Dataset,
    method: str = "auto",
    valid: bool = True,
    seed: int = 0,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    cut: tuple[float, float] = (0.8, 0.9),
) -> Split:
    """Split a dataset into train / validation / test (seeded, deterministic).

    Args:
        dataset: the loaded data; a pre-split dataset returns its own split under "auto".
        method: "auto" (pre-split if any, else leave-last-out when the data has an order,
            else random), "leave-last-out", "random", "temporal" or "presplit".
        valid: carve a validation part; False leaves its share in train.
        seed: seed of the random holdout (and of a randomly carved validation part).
        ratios: (train, valid, test) shares for "random", normalised to sum 1.
        cut: (valid start, test start) order quantiles for "temporal", 0 < a <= b < 1.

    Returns:
        The :class:`Split`; re-running with the same arguments gives the same rows.
    """
    ratios = _check_args(method, ratios, cut)
    if method == "presplit" or (method == "auto" and dataset.presplit is not None):
        return _from_presplit(dataset, valid, seed, ratios)
    inter = dataset.interactions
    if method == "auto":
        method = "leave-last-out" if inter.has_order else "random"
    if method == "leave-last-out":
        labels = leave_last_out_labels(inter, valid)
    elif method == "random":
        labels = random_labels(inter, ratios if valid else _merge_valid(ratios), seed)
    else:
        labels = temporal_labels(inter, cut if valid else (cut[1], cut[1]))
    return _from_labels(inter, labels, method, seed)


def check_split(dataset: Dataset, split: Split) -> None:
    """Refuse data too small to train and evaluate on (metrics would be all NaN).

    Needs at least two users and two items, and a non-empty train, validation and test part.
    """
    where = getattr(dataset, "source", "") or dataset.name
    if dataset.n_items < 2 or dataset.n_users < 2:
        raise DataError(where, f"too small to split: {dataset.n_users} user(s) and "
                               f"{dataset.n_items} item(s); need at least 2 of each")
    sizes = {name: len(getattr(split, name)) for name in ("train", "valid", "test")}
    empty = [name for name, n in sizes.items() if n == 0]
    if empty:
        raise DataError(where, f"the {split.method} split leaves {' and '.join(empty)} empty "
                               f"(sizes {sizes}); users need at least 3 interactions each, "
                               "or use more data")


def leave_last_out_labels(inter: Interactions, valid: bool = True) -> np.ndarray:
    """Per user, last by order -> TEST, second-last -> VALID (when ``valid``).

    Args:
        inter: interactions with an order (ties broken by row position).
        valid: also hold out the second-last interaction.

    Returns:
        int8 [n] labels in {TRAIN, VALID, TEST}.

    Example:
        >>> leave_last_out_labels(Interactions([0, 0, 0], [5, 6, 7], [3.0, 1.0, 2.0], None))
        array([2, 0, 1], dtype=int8)
    """
    if not inter.has_order:
        raise ConfigError("leave-last-out needs an interaction order (timestamps); "
                          "use method='random'")
    n = len(inter)
    idx = np.lexsort((np.arange(n), inter.order, inter.user))
    from_end, count = _rank_in_user(inter.user[idx], from_end=True)
    enough = count >= (3 if valid else 2)
    sorted_labels = np.full(n, TRAIN, dtype=np.int8)
    sorted_labels[enough & (from_end == 0)] = TEST
    if valid:
        sorted_labels[enough & (from_end == 1)] = VALID
    labels = np.empty(n, dtype=np.int8)
    labels[idx] = sorted_labels
    return labels


def random_labels(
    inter: Interactions, ratios: tuple[float, float, float], seed: int
) -> np.ndarray:
    """Per user, a seeded shuffle cut into train / valid / test by ``ratios``.

    Args:
        inter: interactions.
        ratios: (train, valid, test) shares summing to 1.
        seed: seed of the shuffle (numpy ``default_rng``).

    Returns:
        int8 [n] labels in {TRAIN, VALID, TEST}.
    """
    n = len(inter)
    key = np.random.default_rng(seed).random(n)
    idx = np.lexsort((key, inter.user))
    pos, count = _rank_in_user(inter.user[idx], from_end=False)
    n_valid, n_test = holdout_counts(count, ratios)
    sorted_labels = np.full(n, TRAIN, dtype=np.int8)
    sorted_labels[pos >= count - n_test - n_valid] = VALID
    sorted_labels[pos >= count - n_test] = TEST
    labels = np.empty(n, dtype=np.int8)
    labels[idx] = sorted_labels
    return labels


def holdout_counts(
    total: np.ndarray, ratios: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """RecBole's ``_calcu_split_ids`` rule, vectorised over users.

    Args:
        total: int64 [m] interactions per user.
        ratios: (train, valid, test) shares summing to 1.

    Returns:
        (n_valid, n_test), int64 [m] each.

    Example:
        >>> holdout_counts(np.array([10, 5, 2]), (0.8, 0.1, 0.1))
        (array([1, 1, 0]), array([1, 1, 1]))
    """
    _, r_valid, r_test = ratios
    n_valid = np.floor(r_valid * total).astype(np.int64)
    n_test = np.floor(r_test * total).astype(np.int64)
    n_train = total - n_valid - n_test
    go = n_train > 1
    bump = go & (r_test * total > 0) & (r_test * total < 1)
    n_test, n_train = n_test + bump, n_train - bump
    go &= n_train > 1
    bump = go & (r_valid * total > 0) & (r_valid * total < 1)
    return n_valid + bump, n_test


def temporal_labels(inter: Interactions, cut: tuple[float, float]) -> np.ndarray:
    """Global cut by order quantiles: train strictly before valid, valid before test.

    Args:
        inter: interactions with an order.
        cut: (valid start, test start) quantiles; rows with order >= the value at that
            quantile go to the later part, so ties never straddle a boundary.

    Returns:
        int8 [n] labels in {TRAIN, VALID, TEST}.
    """
    if not inter.has_order:
        raise ConfigError("a temporal split needs timestamps; use method='random'")
    n = len(inter)
    ordered = np.sort(inter.order)
    t_valid, t_test = (ordered[min(int(q * n), n - 1)] for q in cut)
    labels = np.full(n, TRAIN, dtype=np.int8)
    labels[inter.order >= t_valid] = VALID
    labels[inter.order >= t_test] = TEST
    if not (labels == TRAIN).any():
        raise ConfigError(f"temporal cut {cut} leaves train empty: too many equal timestamps")
    return labels


def _rank_in_user(sorted_users: np.ndarray, from_end: bool) -> tuple[np.ndarray, np.ndarray]:
    """Position of each row inside its user's block of a user-sorted array, and block size."""
    n = len(sorted_users)
    counts = np.bincount(sorted_users) if n else np.zeros(0, np.int64)
    ends = np.cumsum(counts)
    count = counts[sorted_users]
    start = ends[sorted_users] - count
    pos = np.arange(n) - start
    return (count - 1 - pos if from_end else pos), count


def _from_labels(inter: Interactions, labels: np.ndarray, method: str, seed: int) -> Split:
    return Split(
        train=inter.subset(labels == TRAIN), valid=inter.subset(labels == VALID),
        test=inter.subset(labels == TEST), method=method, seed=seed,
    )


def _from_presplit(
    dataset: Dataset, valid: bool, seed: int, ratios: tuple[float, float, float]
) -> Split:
    parts = dataset.presplit
    if parts is None:
        raise ConfigError(f"method='presplit' but dataset {dataset.name!r} came unsplit")
    train, test = parts["train"], parts["test"]
    empty = train.subset(np.zeros(len(train), bool))
    if "valid" in parts:
        if valid:
            return Split(train, parts["valid"], test, "presplit", seed, "file")
        return Split(Interactions.concat([train, parts["valid"]]), empty, test, "presplit", seed,
                     "none")
    if not valid:
        return Split(train, empty, test, "presplit", seed, "none")
    if train.has_order:
        labels, how = leave_last_out_labels(train, valid=False), "leave-last-out"
    else:
        share = ratios[1] / (ratios[0] + ratios[1])
        labels, how = random_labels(train, (1 - share, 0.0, share), seed), "random"
    carved = labels == TEST  # the one holdout part of the carve becomes validation
    return Split(train.subset(~carved), train.subset(carved), test, "presplit", seed, how)


def _merge_valid(ratios: tuple[float, float, float]) -> tuple[float, float, float]:
    return (ratios[0] + ratios[1], 0.0, ratios[2])


def _check_args(
    method: str, ratios: tuple[float, float, float], cut: tuple[float, float]
) -> tuple[float, float, float]:
    if method not in METHODS:
        raise ConfigError(f"split method must be one of {METHODS}, got {method!r}")
    if len(ratios) != 3 or min(ratios) < 0 or ratios[0] <= 0 or ratios[2] <= 0:
        raise ConfigError(f"ratios must be (train > 0, valid >= 0, test > 0), got {ratios}")
    if len(cut) != 2 or not 0 < cut[0] <= cut[1] < 1:
        raise ConfigError(f"cut must be quantiles 0 < valid_start <= test_start < 1, got {cut}")
    total = float(sum(ratios))
    return (ratios[0] / total, ratios[1] / total, ratios[2] / total)


def _pairs_in(a: Interactions, b: Interactions) -> int:
    """Number of rows of ``a`` whose (user, item) pair also occurs in ``b``."""
    if len(a) == 0 or len(b) == 0:
        return 0
    n_items = int(max(a.item.max(), b.item.max())) + 1
    return int(np.isin(a.user * n_items + a.item, b.user * n_items + b.item).sum())
