"""Concept clusters: the generative LLM splits each k-means cluster into the kinds of item it
holds, and every item joins its nearest kind.

What it adds to the paper (Ji et al., section "Method", step 1). The paper's clusters are
k-means cells of the LLM *embedding*: "same cluster" means "close in a vector space", and a
cell can mix kinds a user tells apart ("packaging tape" and "glue" sit together because both
are adhesives) while splitting one kind across two cells. Hard negatives should be items of
the *same kind* as the positive but not the one the user chose. Here the LLM reads the items'
text and names the kinds, so a cluster boundary follows a concept the model can name, and the
granularity question of the paper ("too coarse: easy negatives; too fine: false negatives")
is asked at the level of concepts. ``bench/concepts.py`` compares it with plain k-means at
the same number of clusters.

How (each step deterministic):

1. Coarse clusters: any :class:`~clusterneg.cluster.pipeline.ClusterResult` (k-means).
2. Proposals: from each coarse cluster a seeded sample of ``titles_per_cluster`` items; the
   LLM (SmolLM2-135M-Instruct, greedy, few-shot) answers "what kind of item is this?" for
   each title. A 135M model cannot list several kinds for a whole group (it copies a title:
   measured on amazon-office), but it labels one item well enough; the distinct cleaned
   answers are the cluster's candidate concepts. Replies are cached on disk like the names
   (:class:`~clusterneg.cluster.naming.NameCache`), so a rerun costs no generation.
3. Choice: the labels are embedded with the item encoder (MiniLM) and each item of the
   cluster goes to its nearest label (cosine). The ``max_concepts`` labels that gather the
   most items are kept (a stray answer gathers few), items are re-assigned among them, and a
   concept with fewer than ``min_concept_size`` items is merged back (its items go to the
   nearest remaining label) until all are large enough.
4. Fallback: a cluster with fewer than two usable labels, or one left after merging, stays
   whole; both counts are reported in ``meta["concepts"]``.

The result is an ordinary ``ClusterResult``: ``item_cluster`` holds the concept ids, the
centroid of a concept is the (unit) mean embedding of its items, so a new item goes online to
the nearest centroid like any k-means item (``meta["concepts"]["online_agreement"]`` is the
share of catalog items whose nearest centroid is their own concept), and ``names`` are the
labels. Every sampler uses it unchanged.

Example:
    >>> emb = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32)
    >>> label_vecs = np.array([[1, 0], [0, 1]], np.float32)
    >>> nearest_label(emb, label_vecs).tolist()
    [0, 0, 1, 1]
    >>> clean_label("Binder (3602).")
    'Binder'
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from clusterneg.cluster.diagnostics import diagnose
from clusterneg.cluster.naming import Messages, NameCache, _generate
from clusterneg.errors import ConfigError

log = logging.getLogger(__name__)

#: Changes whenever the prompt changes (part of the cache key).
PROMPT_VERSION = "concept-v1"
SYSTEM = "What kind of item is this? Reply with the kind only, 1 to 3 words."
#: Worked examples shown before each title: (title, kind).
SHOTS: tuple[tuple[str, str], ...] = (
    ("Scream (1996)", "Slasher horror film"),
    ("BIC Round Stic ballpoint pens, blue, 12 pack", "Ballpoint pens"),
    ("Post-it Super Sticky Notes, 3 x 3 in, yellow", "Sticky notes"),
    ("Victorinox Fibrox 8-inch chef's knife", "Kitchen knife"),
    ("Logitech M510 Wireless Mouse", "Wireless mouse"),
    ("The Silence of the Lambs", "Psychological thriller film"),
)

LabelEncoder = Callable[[list[str]], np.ndarray]
#: Replies are written to the cache after every this many prompts.
SAVE_EVERY = 32


def build_messages(title: str) -> Messages:
    """The chat for one item: system line, the worked examples, then this title (<= 80
    characters)."""
    msgs = [{"role": "system", "content": SYSTEM}]
    for shot, kind in SHOTS:
        msgs += [{"role": "user", "content": shot}, {"role": "assistant", "content": kind}]
    msgs.append({"role": "user", "content": title[:80]})
    return msgs


def clean_label(raw: str, max_words: int = 4) -> str:
    """A usable concept label from a raw reply, or "" when nothing usable is left.

    First line only; a "Kind:" lead, bracketed text, tokens with digits (model numbers, sizes)
    and end punctuation removed; at most ``max_words`` words; at least three letters.

    Example:
        >>> clean_label("Kind: Cross-cut shredder (46")
        'Cross-cut shredder'
        >>> clean_label("Swingline 747 Classic"), clean_label("1001011"), clean_label("")
        ('Swingline Classic', '', '')
    """
    line = raw.strip().splitlines()[0] if raw.strip() else ""
    line = re.sub(r"^(kind|type|category|label)\s*:\s*", "", line, flags=re.I)
    line = re.sub(r"\([^)]*\)?|\[[^\]]*\]?", " ", line)
    words = [w for w in line.replace(",", " ").split() if not re.search(r"\d", w)]
    out = " ".join(words[:max_words]).strip(" \"'*`.:;,-&/")
    return out if len(re.findall(r"[A-Za-z]", out)) >= 3 else ""


def unique_labels(replies: Sequence[str]) -> list[str]:
    """Distinct cleaned labels in order of first appearance (case-insensitive).

    Example:
        >>> unique_labels(["Scotch tape", "scotch tape.", "Glue", "???", "Glue (8 oz)"])
        ['Scotch tape', 'Glue']
    """
    seen: dict[str, str] = {}
    for raw in replies:
        lab = clean_label(raw)
        if lab and lab.lower() not in seen:
            seen[lab.lower()] = lab
    return list(seen.values())


def nearest_label(emb: np.ndarray, label_vecs: np.ndarray) -> np.ndarray:
    """Index of the most cosine-similar label for every row, int64 [n] (ties: lowest
    index)."""
    x = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    lab = label_vecs / np.maximum(np.linalg.norm(label_vecs, axis=1, keepdims=True), 1e-12)
    return np.argmax(x @ lab.T, axis=1).astype(np.int64)


def choose_concepts(emb: np.ndarray, label_vecs: np.ndarray, max_concepts: int,
                    min_size: int) -> tuple[list[int], np.ndarray]:
    """Which labels become concepts, and each item's concept.

    The ``max_concepts`` labels nearest to the most items are kept (ties: first label); then,
    while the smallest kept concept has fewer than ``min_size`` items and more than one is
    left, it is dropped and its items move to their nearest remaining label.

    Args:
        emb: float [n, d] the cluster's item embeddings; label_vecs: float [m, d].

    Returns:
        (kept label indices, in label order; int64 [n] position of each item's concept in
        that list).

    Example:
        >>> emb = np.array([[1, 0], [1, .1], [1, .2], [0, 1], [.1, 1], [1, 1]], np.float32)
        >>> labels = np.array([[1, 0], [0, 1], [-1, 0]], np.float32)
        >>> choose_concepts(emb, labels, max_concepts=2, min_size=2)
        ([0, 1], array([0, 0, 0, 1, 1, 0]))
        >>> choose_concepts(emb, labels, max_concepts=2, min_size=3)[0]
        [0]
    """
    coverage = np.bincount(nearest_label(emb, label_vecs), minlength=len(label_vecs))
    order = sorted(range(len(label_vecs)), key=lambda j: (-coverage[j], j))
    keep = sorted(j for j in order[:max_concepts] if coverage[j] > 0)
    while True:
        local = nearest_label(emb, label_vecs[keep])
        sizes = np.bincount(local, minlength=len(keep))
        smallest = int(np.argmin(sizes))
        if len(keep) == 1 or sizes[smallest] >= min_size:
            return keep, local
        del keep[smallest]


@dataclass
class ConceptOptions:
    """How clusters are split into concepts.

    Args:
        max_concepts: at most this many concepts per coarse cluster (>= 2).
        titles_per_cluster: items sampled per cluster for the LLM to label (>= 2).
        min_concept_size: concepts with fewer items are merged back (>= 1).
        seed: seed of the title sample.
    """

    max_concepts: int = 4
    titles_per_cluster: int = 12
    min_concept_size: int = 5
    seed: int = 0

    def check(self) -> ConceptOptions:
        """Self, or one :class:`ConfigError` naming the bad option."""
        for name, low in (("max_concepts", 2), ("titles_per_cluster", 2),
                          ("min_concept_size", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"--{name.replace('_', '-')} must be an integer >= {low}, "
                                  f"got {value!r}")
        return self


@dataclass
class ConceptSplit:
    """One coarse cluster's outcome: candidate labels, kept concepts, their sizes, status
    ("split", "fallback: ..." or "merged: ...")."""

    coarse: int
    size: int
    candidates: list[str] = field(default_factory=list)
    concepts: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    status: str = "split"


def sample_titles(item_cluster: np.ndarray, k: int, n: int, seed: int) -> list[np.ndarray]:
    """Per cluster, up to ``n`` of its item ids drawn without replacement (seeded by
    ``(seed, cluster)``, so one cluster's sample does not depend on the others), sorted."""
    out = []
    for c in range(k):
        members = np.flatnonzero(item_cluster == c)
        rng = np.random.default_rng([seed, c])
        pick = rng.choice(members, min(n, len(members)), replace=False) if len(members) else []
        out.append(np.sort(np.asarray(pick, np.int64)))
    return out


def propose_labels(titles: Sequence[str], samples: list[np.ndarray], generator: Any,
                   cache: Any = None, progress: Any | None = None) -> tuple[list[list[str]],
                                                                              dict[str, int]]:
    """Per cluster, the LLM's raw reply for each sampled title (cached per prompt).

    Returns:
        (replies per cluster, {"prompts", "generated", "cached"}).
    """
    wanted = sorted({int(j) for s in samples for j in s})
    prompts = {j: build_messages(titles[j]) for j in wanted}
    store = None if cache is False else NameCache(getattr(generator, "model_id", "generator"),
                                                  None if cache is True else cache)
    keys = {j: NameCache.key([{"role": "version", "content": PROMPT_VERSION}, *prompts[j]])
            for j in wanted}
    replies = {j: store.get(keys[j]) if store else None for j in wanted}
    todo = [j for j in wanted if replies[j] is None]
    task = None if progress is None else progress.add_task("labelling titles", total=len(todo))
    for start in range(0, len(todo), SAVE_EVERY):  # saved as it goes: a killed run resumes
        chunk = todo[start:start + SAVE_EVERY]
        fresh = dict(zip(chunk, _generate(generator, [prompts[j] for j in chunk], None),
                         strict=True))
        if store:
            store.put({keys[j]: r for j, r in fresh.items()})
        replies.update(fresh)
        if progress is not None:
            progress.advance(task, len(chunk))
    stats = {"prompts": len(wanted), "generated": len(todo), "cached": len(wanted) - len(todo)}
    return [[str(replies[int(j)]) for j in s] for s in samples], stats


def split_into_concepts(emb: np.ndarray, coarse: Any, titles: Sequence[str], *,
                        generator: Any, label_encoder: LabelEncoder,
                        options: ConceptOptions | None = None,
                        user_items: sp.spmatrix | None = None,
                        categories: Sequence[Sequence[str]] | None = None,
                        category_level: int | str = "first", cache: Any = None,
                        progress: Any | None = None) -> Any:
    """Split every cluster of ``coarse`` into LLM-named concepts.

    Args:
        emb: float32 [n_items, d] unit content embeddings (the ones ``coarse`` was fit on).
        coarse: the k-means :class:`~clusterneg.cluster.pipeline.ClusterResult`.
        titles: per item, its title.
        generator: ``list[Messages] -> list[str]`` with a ``model_id`` (tests: a fake one).
        label_encoder: ``list[str] -> float [m, d]`` in the same space as ``emb``.
        options: :class:`ConceptOptions`.
        user_items, categories, category_level: for the diagnostics (as in
            :func:`~clusterneg.cluster.diagnostics.diagnose`).
        cache: cache root, None for the default, False for none.
        progress: a rich Progress for the generation.

    Returns:
        A ``ClusterResult`` whose clusters are the concepts (ids grouped by coarse cluster),
        ``names`` the labels, ``meta["concepts"]`` what happened per coarse cluster.
    """
    from clusterneg.cluster.pipeline import ClusterResult, _clusterer_from

    opts = (options or ConceptOptions()).check()
    k = coarse.n_clusters
    samples = sample_titles(coarse.item_cluster, k, opts.titles_per_cluster, opts.seed)
    replies, gen_stats = propose_labels(titles, samples, generator, cache, progress)
    item_concept = np.zeros(len(emb), np.int64)
    centroids: list[np.ndarray] = []
    names: list[str] = []
    splits: list[ConceptSplit] = []
    for c in range(k):
        members = np.flatnonzero(coarse.item_cluster == c)
        split = ConceptSplit(coarse=c, size=len(members), candidates=unique_labels(replies[c]))
        local = np.zeros(len(members), np.int64)
        labels = [_whole_name(coarse, c, split.candidates)]
        if len(split.candidates) < 2:
            split.status = f"fallback: {len(split.candidates)} usable label(s)"
        else:
            vecs = np.asarray(label_encoder(split.candidates), np.float32)
            keep, local = choose_concepts(emb[members], vecs, opts.max_concepts,
                                          opts.min_concept_size)
            if len(keep) == 1:
                split.status = "merged: one concept left"
            else:
                labels = [split.candidates[j] for j in keep]
        split.concepts = labels
        split.sizes = np.bincount(local, minlength=len(labels)).tolist()
        item_concept[members] = len(names) + local
        for q in range(len(labels)):
            mean = emb[members[local == q]].mean(axis=0)
            centroids.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        names += labels
        splits.append(split)
    cents = np.asarray(centroids, np.float32)
    clusterer = _clusterer_from(cents, {"spherical": True})
    agreement = float(np.mean(clusterer.assign(emb) == item_concept)) if len(emb) else 1.0
    diag = diagnose(item_concept, len(cents), user_items=user_items, emb=emb,
                    categories=categories, category_level=category_level)
    meta = dict(coarse.meta)
    meta.update(method="concept", spherical=True, concepts={
        "coarse_n_clusters": k, "n_concepts": len(cents), **vars(opts),
        "generator": getattr(generator, "model_id", "generator"), "prompt": PROMPT_VERSION,
        **gen_stats,
        "n_split": sum(s.status == "split" for s in splits),
        "n_fallback": sum(s.status.startswith("fallback") for s in splits),
        "n_merged_whole": sum(s.status.startswith("merged") for s in splits),
        "online_agreement": agreement,
        "per_cluster": [vars(s) for s in splits]})
    log.info("concepts: %d coarse clusters -> %d concepts (%d fallback, %d merged whole)", k,
             len(cents), meta["concepts"]["n_fallback"], meta["concepts"]["n_merged_whole"])
    return ClusterResult(item_cluster=item_concept, centroids=cents, diagnostics=diag,
                         names=names, clusterer=clusterer, meta=meta)


def _whole_name(coarse: Any, c: int, candidates: list[str]) -> str:
    """Name of a cluster kept whole: its LLM name, else its first label, else "cluster c"."""
    if coarse.names:
        return str(coarse.names[c])
    return candidates[0] if candidates else f"cluster {c}"


def concept_clusters(dataset: Any, emb: np.ndarray, coarse: Any, *, encoder_spec: str = "minilm",
                     options: ConceptOptions | None = None,
                     user_items: sp.spmatrix | None = None, cache_dir: Any = None,
                     generator: Any | None = None, encoder_opts: dict[str, Any] | None = None,
                     progress: Any | None = None) -> Any:
    """:func:`split_into_concepts` for a dataset: SmolLM2 (offline, greedy, 8 new tokens)
    labels the titles, the item encoder embeds the labels.

    The labels must land in the items' space, so the embeddings must not be post-processed
    (centred / whitened against the catalog): MiniLM's are not.
    """
    from clusterneg.cluster.naming import SmolLM2Namer
    from clusterneg.cluster.pipeline import category_level_for, example_titles
    from clusterneg.encode.embed import l2_normalize
    from clusterneg.encode.factory import build_encoder
    from clusterneg.encode.template import item_titles

    post = (coarse.meta.get("embedding") or {}).get("postprocess", "none")
    if post != "none":
        raise ConfigError(f"concept clusters need item embeddings without post-processing "
                          f"(labels are embedded alone), got postprocess {post!r} for "
                          f"encoder {encoder_spec!r}; use --encoder minilm")
    encoder = build_encoder(encoder_spec, **(encoder_opts or {}))

    def label_encoder(labels: list[str]) -> np.ndarray:
        return l2_normalize(encoder.encode(labels))

    if generator is None:
        from pathlib import Path

        generator = SmolLM2Namer(max_new_tokens=8, batch_size=8, model_cache=None if (
            cache_dir is None) else Path(cache_dir) / "models")
    result = split_into_concepts(
        emb, coarse, item_titles(dataset.catalog), generator=generator,
        label_encoder=label_encoder, options=options, user_items=user_items,
        categories=dataset.catalog.categories(), category_level=category_level_for(dataset),
        cache=cache_dir, progress=progress)
    result.examples = example_titles(dataset, emb, result)
    return result
