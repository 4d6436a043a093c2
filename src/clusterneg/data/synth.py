"""Synthetic interaction data at scale, with the structure cluster negatives exploit.

Items belong to latent semantic clusters, and their text says so: each cluster has its own
small vocabulary of made-up topic words, and an item's title mixes three of its cluster's
words with two shared filler words, so a text encoder can recover the clusters (and a
cluster-blind sampler cannot). Item popularity is Zipf (``p(rank r) ~ r^-alpha``, ranks
shuffled across clusters). Each user has a taste over a few clusters (Dirichlet weights over
``tastes`` favourite clusters); an interaction picks a user, a cluster from the user's taste
(or, with probability ``explore``, from the clusters' overall popularity), then an item of
that cluster by its popularity. Rows are written in time order, ``timestamp`` increasing.

**Facets: taste inside a cluster** (``facets`` > 1, ``focus`` > 0). The base generator picks
an item inside the chosen cluster by popularity alone, so once a model knows a user's
clusters nothing inside a cluster separates what the user wants from what they do not:
same-cluster negatives have nothing to teach there (the regime study's synthetic result,
``bench/results/regime_reading.md``). With facets, every item also belongs to one of
``facets`` sub-topics of its cluster (its title's last word names it), every user has one
favourite facet in each favourite cluster, and an interaction in a favourite cluster stays
inside that facet with probability ``focus`` (else it picks by popularity from the whole
cluster, as before). The other facets of a user's cluster are then the negatives the model
must learn to tell apart: the confusion the paper's same-cluster negatives target. With the
default ``facets=1`` nothing changes: the same seed gives the same files as before.

Generation is chunked: each shard of ``shard_rows`` rows is drawn from its own generator
(``SeedSequence(seed).spawn``) and written before the next is drawn, so memory is
O(items + users + shard_rows), never O(interactions), and the output is deterministic under
the seed (whatever the machine).

Layout of the output directory (readable by the ``table`` loader and by
``clusterneg.data.stream``):

- ``interactions/part-00000.parquet``, ...: ``user_id``, ``item_id`` (int64, contiguous from
  0), ``timestamp`` (int64 seconds);
- ``items.parquet``: ``item_id``, ``title``, ``category`` (the cluster's name);
- ``latent_items.parquet``: ``item_id``, ``cluster``, ``prob`` (each item's true share of
  interactions), for checking estimators and clusterings against the truth;
- ``synth.json``: the parameters and counts.

References:
    Ji et al., arXiv 2607.00448, 2026, section "Method" (semantic clusters of item content;
    the regime of catalogs much larger than the batch). Yi et al., "Sampling-Bias-Corrected
    Neural Modeling for Large Corpus Item Recommendations", RecSys 2019 (Zipf-skewed
    streams, the reason for logQ correction).

Example:
    >>> import tempfile
    >>> out = synthesize(SynthConfig(n_items=50, n_interactions=300, n_users=20,
    ...                              n_clusters=5, shard_rows=128), tempfile.mkdtemp() + "/d")
    >>> sorted(p.name for p in (out / "interactions").iterdir())
    ['part-00000.parquet', 'part-00001.parquet', 'part-00002.parquet']
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from clusterneg.errors import ConfigError
from clusterneg.outputs import write_run_dir

_ONSETS = ("b", "c", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br",
           "cr", "dr", "gl", "pl", "st", "tr")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou", "ea")
_FILLER = ("classic", "deluxe", "compact", "original", "premium", "everyday", "portable",
           "essential", "modern", "vintage", "edition", "series", "set", "pack", "kit")
WORDS_PER_CLUSTER = 8
ROW_GROUP = 131_072  # rows per Parquet row group: the unit streams and ranks split on


@dataclass
class SynthConfig:
    """What to generate.

    Args:
        n_items: catalog size N.
        n_interactions: rows M.
        n_users: users U (default: ``max(1, M // 20)``).
        n_clusters: latent clusters C (default: ``max(2, round(sqrt(N) / 4))``, capped at 300).
        zipf_alpha: popularity exponent (1.0: classic Zipf).
        tastes: favourite clusters per user.
        explore: probability an interaction ignores the user's taste.
        facets: sub-topics per cluster (1: none).
        focus: probability an interaction in a favourite cluster stays inside the user's
            favourite facet of it (0 with ``facets=1``).
        shard_rows: rows per Parquet shard (and per generation chunk).
        seed: seeds everything.
    """

    n_items: int = 10_000
    n_interactions: int = 100_000
    n_users: int | None = None
    n_clusters: int | None = None
    zipf_alpha: float = 1.0
    tastes: int = 3
    explore: float = 0.1
    shard_rows: int = 1_000_000
    seed: int = 0
    facets: int = 1
    focus: float = 0.0

    def resolved(self) -> SynthConfig:
        """A copy with defaults filled in, after checking every value."""
        for name in ("n_items", "n_interactions", "shard_rows", "tastes", "facets"):
            if getattr(self, name) < 1:
                raise ConfigError(f"synth option {name} must be >= 1, got {getattr(self, name)}")
        users = self.n_users if self.n_users is not None else max(1, self.n_interactions // 20)
        clusters = (self.n_clusters if self.n_clusters is not None
                    else min(300, max(2, round(self.n_items ** 0.5 / 4))))
        if users < 1 or not 1 <= clusters <= self.n_items:
            raise ConfigError(f"synth needs n_users >= 1 and 1 <= n_clusters <= n_items, got "
                              f"{users} users, {clusters} clusters, {self.n_items} items")
        if not (0.0 <= self.explore <= 1.0) or self.zipf_alpha < 0:
            raise ConfigError("synth needs 0 <= explore <= 1 and zipf_alpha >= 0")
        if not 0.0 <= self.focus <= 1.0 or (self.focus > 0 and self.facets < 2):
            raise ConfigError(f"synth needs 0 <= focus <= 1, and facets >= 2 for a focus > 0; "
                              f"got focus {self.focus}, facets {self.facets}")
        return SynthConfig(self.n_items, self.n_interactions, users, clusters, self.zipf_alpha,
                           min(self.tastes, clusters), self.explore, self.shard_rows, self.seed,
                           self.facets, self.focus)


@dataclass
class Latent:
    """The hidden structure: item clusters and popularity, user tastes.

    Args:
        item_cluster: int64 [N].
        item_pop: float64 [N], unnormalised Zipf popularity weights.
        cluster_items: int64 [N] item ids grouped by cluster; ``cluster_start`` [C + 1].
        cluster_cdf: float64 [N], ``c + `` the cumulative within-cluster popularity share,
            so ``searchsorted(cluster_cdf, c + u)`` draws an item of cluster c.
        cluster_prob: float64 [C], each cluster's share of popularity (exploration draws).
        user_fav: int64 [U, tastes] favourite clusters; ``user_weight`` float64 [U, tastes].
        item_facet: int64 [N] each item's facet (all 0 without facets); ``fine_*``: the
            same grouping and CDF as ``cluster_*`` over ``cluster * facets + facet``;
            ``user_facet`` int64 [U, tastes], the favourite facet of each favourite cluster.
    """

    item_cluster: np.ndarray
    item_pop: np.ndarray
    cluster_items: np.ndarray
    cluster_start: np.ndarray
    cluster_cdf: np.ndarray
    cluster_prob: np.ndarray
    user_fav: np.ndarray
    user_weight: np.ndarray
    item_facet: np.ndarray | None = None
    fine_items: np.ndarray | None = None
    fine_start: np.ndarray | None = None
    fine_cdf: np.ndarray | None = None
    user_facet: np.ndarray | None = None


def grouped_cdf(group: np.ndarray, pop: np.ndarray,
                n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Items grouped by ``group`` (stable), each group's start [G + 1], ``g +`` the
    cumulative within-group popularity share, so ``searchsorted(cdf, g + u)`` draws an item
    of group g by popularity (an empty group has no entries: callers check its start), and
    each group's total popularity [G]."""
    order = np.argsort(group, kind="stable")
    start = np.searchsorted(group[order], np.arange(n_groups + 1))
    group_pop = np.bincount(group, weights=pop, minlength=n_groups)
    within = np.cumsum(pop[order]) - np.repeat(np.cumsum(group_pop) - group_pop,
                                               np.diff(start))
    gp = group_pop[group[order]]
    return order, start, group[order] + within / np.where(gp > 0, gp, 1.0), group_pop


def make_latent(cfg: SynthConfig, rng: np.random.Generator) -> Latent:
    """Draw clusters, Zipf popularity and user tastes (``cfg`` already resolved)."""
    n, c = cfg.n_items, int(cfg.n_clusters or 1)
    rank = rng.permutation(n)
    pop = (rank + 1.0) ** -cfg.zipf_alpha
    cluster = rng.integers(0, c, n)
    cluster[rng.permutation(n)[:c]] = np.arange(c)  # no empty cluster
    order, start, cdf, cluster_pop = grouped_cdf(cluster, pop, c)
    users = int(cfg.n_users or 1)
    fav = favourite_clusters(np.log(cluster_pop / pop.sum()), users, cfg.tastes, rng)
    weight = rng.dirichlet(np.full(cfg.tastes, 0.5), size=users)
    lat = Latent(cluster, pop, order, start, cdf, cluster_pop / pop.sum(), fav, weight)
    if cfg.facets > 1:  # drawn after everything above: facets=1 keeps the old streams
        f = cfg.facets
        lat.item_facet = rng.integers(0, f, n)
        lat.fine_items, lat.fine_start, lat.fine_cdf, _ = grouped_cdf(
            cluster * f + lat.item_facet, pop, c * f)
        lat.user_facet = rng.integers(0, f, fav.shape)
    return lat


def favourite_clusters(log_p: np.ndarray, users: int, k: int, rng: np.random.Generator,
                       chunk: int = 8192) -> np.ndarray:
    """int64 [users, k]: k distinct clusters per user, drawn without replacement with
    probability ``exp(log_p)`` (Gumbel top-k, in chunks of users to bound memory)."""
    out = np.empty((users, k), dtype=np.int64)
    for a in range(0, users, chunk):
        keys = log_p + rng.gumbel(size=(min(chunk, users - a), len(log_p)))
        out[a:a + len(keys)] = np.argpartition(-keys, k - 1, axis=1)[:, :k]
    return out


def item_probabilities(lat: Latent, cfg: SynthConfig) -> np.ndarray:
    """Each item's true share of interactions, float64 [N] (users drawn uniformly)."""
    c = len(lat.cluster_prob)
    taste = np.bincount(lat.user_fav.ravel(), weights=lat.user_weight.ravel(), minlength=c)
    total = taste.sum()
    within = lat.item_pop / np.bincount(lat.item_cluster, weights=lat.item_pop, minlength=c)[
        lat.item_cluster]
    if lat.user_facet is None or cfg.focus == 0:
        cluster_share = (1 - cfg.explore) * taste / total + cfg.explore * lat.cluster_prob
        return cluster_share[lat.item_cluster] * within
    f = cfg.facets
    fine = lat.item_cluster * f + lat.item_facet
    fine_taste = np.bincount((lat.user_fav * f + lat.user_facet).ravel(),
                             weights=lat.user_weight.ravel(), minlength=c * f)
    empty = np.diff(lat.fine_start) == 0  # a focused draw there falls back to the cluster
    lost = np.bincount(np.arange(c * f) // f, weights=fine_taste * empty, minlength=c)
    fine_pop = np.bincount(fine, weights=lat.item_pop, minlength=c * f)
    in_fine = lat.item_pop / fine_pop[fine]
    cluster_part = ((1 - cfg.explore) * ((1 - cfg.focus) * taste + cfg.focus * lost) / total
                    + cfg.explore * lat.cluster_prob)
    fine_part = (1 - cfg.explore) * cfg.focus * fine_taste / total
    return cluster_part[lat.item_cluster] * within + fine_part[fine] * in_fine


def draw_chunk(lat: Latent, cfg: SynthConfig, rows: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` interactions as (user, item) int64 arrays."""
    users = rng.integers(0, len(lat.user_fav), rows)
    cum = np.cumsum(lat.user_weight[users], axis=1)
    pick = (rng.random(rows)[:, None] > cum[:, :-1]).sum(axis=1) if cum.shape[1] > 1 else \
        np.zeros(rows, dtype=np.int64)
    cluster = lat.user_fav[users, pick]
    explore = rng.random(rows) < cfg.explore
    cluster[explore] = rng.choice(len(lat.cluster_prob), int(explore.sum()), p=lat.cluster_prob)
    pos = np.searchsorted(lat.cluster_cdf, cluster + rng.random(rows), side="right")
    pos = np.minimum(pos, lat.cluster_start[cluster + 1] - 1)  # float rounding at the edge
    items = lat.cluster_items[pos]
    if lat.user_facet is not None and cfg.focus > 0:  # drawn last: facets=1 keeps the stream
        fine = cluster * cfg.facets + lat.user_facet[users, pick]
        focused = (~explore & (rng.random(rows) < cfg.focus)
                   & (lat.fine_start[fine + 1] > lat.fine_start[fine]))
        g = fine[focused]
        at = np.searchsorted(lat.fine_cdf, g + rng.random(len(g)), side="right")
        items[focused] = lat.fine_items[np.minimum(at, lat.fine_start[g + 1] - 1)]
    return users, items


def cluster_words(n_clusters: int, rng: np.random.Generator) -> list[list[str]]:
    """A distinct vocabulary of made-up topic words per cluster."""
    seen: set[str] = set()
    out = []
    for _ in range(n_clusters):
        words: list[str] = []
        while len(words) < WORDS_PER_CLUSTER:
            w = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(3))
            if w not in seen:
                seen.add(w)
                words.append(w)
        out.append(words)
    return out


def items_table(lat: Latent, rng: np.random.Generator) -> pa.Table:
    """``item_id``, ``title`` (three cluster words + two filler words; with facets the last
    word names the item's facet instead), ``category``."""
    vocab = cluster_words(len(lat.cluster_prob), rng)
    n = len(lat.item_cluster)
    picks = rng.integers(0, WORDS_PER_CLUSTER, (n, 3))
    fill = rng.integers(0, len(_FILLER), (n, 2))
    titles = [f"{vocab[c][a]} {vocab[c][b]} {_FILLER[f]} {vocab[c][d]} {_FILLER[g]}"
              for c, (a, b, d), (f, g) in zip(lat.item_cluster.tolist(), picks.tolist(),
                                               fill.tolist(), strict=True)]
    if lat.item_facet is not None:  # drawn after the base titles: facets=1 keeps them
        n_facets = int(lat.item_facet.max()) + 1
        facet_vocab = cluster_words(len(lat.cluster_prob) * n_facets, rng)
        titles = [t.rsplit(" ", 1)[0] + " " + facet_vocab[c * n_facets + f][0]
                  for t, c, f in zip(titles, lat.item_cluster.tolist(),
                                     lat.item_facet.tolist(), strict=True)]
    names = [" ".join(v[:2]) for v in vocab]
    return pa.table({"item_id": np.arange(n, dtype=np.int64), "title": titles,
                     "category": [names[c] for c in lat.item_cluster.tolist()]})


def check_new_dir(out: str | Path) -> Path:
    """``out`` as a Path, if nothing is there yet (synth never writes into existing data)."""
    out = Path(out)
    if out.exists():
        raise ConfigError(f"{out} already exists; synth writes a new directory only")
    return out


def synthesize(cfg: SynthConfig, out: str | Path, progress: object | None = None) -> Path:
    """Generate the dataset into ``out`` (written beside it, then renamed into place).

    Args:
        cfg: what to generate.
        out: destination directory (must not exist).
        progress: a ``rich.progress.Progress``, or None.

    Returns:
        ``out`` as a Path.
    """
    cfg, out = cfg.resolved(), check_new_dir(out)
    root = np.random.SeedSequence(cfg.seed)
    latent_seq, text_seq, rows_seq = root.spawn(3)
    lat = make_latent(cfg, np.random.default_rng(latent_seq))
    n_shards = -(-cfg.n_interactions // cfg.shard_rows)

    def fill(tmp: Path) -> None:
        pq.write_table(items_table(lat, np.random.default_rng(text_seq)), tmp / "items.parquet")
        latent = {"item_id": np.arange(cfg.n_items, dtype=np.int64),
                  "cluster": lat.item_cluster, "prob": item_probabilities(lat, cfg)}
        if lat.item_facet is not None:
            latent["facet"] = lat.item_facet
        pq.write_table(pa.table(latent), tmp / "latent_items.parquet")
        (tmp / "interactions").mkdir()
        task = progress.add_task("synth", total=n_shards) if progress else None  # type: ignore[attr-defined]
        for k, seq in enumerate(rows_seq.spawn(n_shards)):
            rows = min(cfg.shard_rows, cfg.n_interactions - k * cfg.shard_rows)
            user, item = draw_chunk(lat, cfg, rows, np.random.default_rng(seq))
            t = np.arange(k * cfg.shard_rows, k * cfg.shard_rows + rows, dtype=np.int64)
            pq.write_table(pa.table({"user_id": user, "item_id": item, "timestamp": t}),
                           tmp / "interactions" / f"part-{k:05d}.parquet",
                           row_group_size=ROW_GROUP)
            if progress is not None:
                progress.update(task, advance=1)  # type: ignore[attr-defined]
        meta = asdict(cfg) | {"n_shards": n_shards, "format": "clusterneg-synth-1"}
        (tmp / "synth.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    return write_run_dir(out, fill, kind="synth")
