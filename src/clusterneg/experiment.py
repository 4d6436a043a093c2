"""One experiment end to end: data -> split -> content embeddings and clusters -> train ->
full-corpus evaluation -> run directory.

:func:`prepare` does the sampler-independent work once (load, split, encode, cluster) so
that a comparison of many samplers and seeds (``clusterneg compare``) reuses it, and
:func:`run` trains and evaluates one configuration on it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clusterneg.data.dataset import Dataset
from clusterneg.data.splits import Split, check_split, make_split
from clusterneg.data.user_items import UserItems
from clusterneg.eval.metrics import DEFAULT_KS
from clusterneg.model import ModelConfig, TwoTower
from clusterneg.train.checkpoint import save_checkpoint
from clusterneg.train.config import TrainConfig
from clusterneg.train.trainer import TrainData, TrainResult, train

log = logging.getLogger(__name__)

@dataclass
class ExperimentConfig:
    """Data, split, content features and clusters shared by every run of a comparison.

    Args:
        dataset: built-in name (``ml-100k``) or a directory (format detected).
        split: ``auto`` | ``leave-last-out`` | ``random`` | ``temporal``.
        split_seed: seed of the split (fixed across runs so all samplers see the same data).
        encoder: item text encoder spec (``minilm``, ``smollm2``, a model dir,
            ``precomputed:PATH``) or ``none`` for id-only item towers.
        n_clusters: number of k-means clusters of the content embeddings, or ``auto``.
        use_content: feed the content embedding into the item tower (clusters are built
            from it either way).
        cache_dir: embedding cache directory (None: the default).
        name_clusters: have SmolLM2 write a short name per cluster (cached; for reports).
        valid_users: validate (epoch and tuning choices) on a fixed random sample of this
            many users (seeded by ``split_seed``); 0: every user. The test split always
            ranks every user.
        concepts: split each k-means cluster into at most this many LLM-named concepts
            (:mod:`clusterneg.cluster.concepts`); 0: plain k-means.
    """

    dataset: str = "ml-100k"
    split: str = "auto"
    split_seed: int = 0
    encoder: str = "minilm"
    n_clusters: int | str = "auto"
    use_content: bool = True
    cache_dir: str | None = None
    name_clusters: bool = False
    valid_users: int = 0
    concepts: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Prepared:
    """The sampler-independent inputs of every run: dataset, split, each part's per-user item
    sets (built here once, passed to the samplers, evaluation and diagnostics), embeddings."""

    config: ExperimentConfig
    dataset: Dataset
    split: Split
    train_items: UserItems
    valid_items: UserItems
    test_items: UserItems
    train_valid_items: UserItems
    content: np.ndarray | None = None
    item_cluster: np.ndarray | None = None
    n_clusters: int = 0
    cluster_info: Any = None

    def train_data(self, with_content: bool = True) -> TrainData:
        return TrainData(
            n_users=self.dataset.n_users, n_items=self.dataset.n_items, train=self.split.train,
            content=self.content if with_content else None, item_cluster=self.item_cluster,
            n_clusters=self.n_clusters, user_items=self.train_items,
        )


@dataclass
class RunResult:
    """Metrics of one trained run on the test split, plus its training record."""

    metrics: dict[str, float]
    exposure: dict[str, float]
    valid: dict[str, float]
    train: dict[str, Any]
    config: dict[str, Any]
    per_user: dict[str, np.ndarray] = field(default_factory=dict)
    topk: np.ndarray | None = None
    eval_users: np.ndarray | None = None
    buckets: dict[str, np.ndarray] = field(default_factory=dict)
    model: TwoTower | None = None


def prepare(cfg: ExperimentConfig, progress: Any | None = None) -> Prepared:
    """Load, split, and (unless ``encoder == 'none'``) embed and cluster the items."""
    from clusterneg.data.load import load_dataset

    ds = load_dataset(cfg.dataset)
    split = make_split(ds, method=cfg.split, seed=cfg.split_seed)

    def items(*parts: Any) -> UserItems:
        return UserItems.from_interactions(list(parts), ds.n_users, ds.n_items)

    check_split(ds, split)
    prep = Prepared(cfg, ds, split, items(split.train), items(split.valid), items(split.test),
                    items(split.train, split.valid))
    if cfg.encoder != "none":
        from clusterneg.cluster import embed_and_cluster

        emb, info = embed_and_cluster(ds, cfg.encoder, cfg.n_clusters, seed=cfg.split_seed,
                                      cache_dir=cfg.cache_dir, user_items=prep.train_items,
                                      name=cfg.name_clusters, progress=progress)
        if cfg.concepts:
            from clusterneg.cluster.concepts import ConceptOptions, concept_clusters

            info = concept_clusters(ds, emb, info, encoder_spec=cfg.encoder,
                                    options=ConceptOptions(cfg.concepts, seed=cfg.split_seed),
                                    user_items=prep.train_items.to_scipy(),
                                    cache_dir=cfg.cache_dir, progress=progress)
        prep.content = emb
        prep.item_cluster = np.asarray(info.item_cluster, dtype=np.int64)
        prep.n_clusters = info.n_clusters
        prep.cluster_info = info
    return prep


def score_fn(model: TwoTower):
    """users [b] -> scores of every item [b, N] (cosine; the temperature does not change
    the ranking).

    The scores are written into one buffer, reused by every call (the next call overwrites
    them): a fresh [256, N] result per chunk costs a page-faulted allocation, a third of the
    matmul's time on the CPU (issue 12; ``bench/bench_eval.py``).
    """
    model.eval()
    items = model.all_item_vectors()
    buffer: list[torch.Tensor] = []

    @torch.no_grad()
    def fn(users: torch.Tensor) -> torch.Tensor:
        user = model.user_vectors(users.to(items.device))
        if user.dtype != items.dtype:
            return user @ items.T
        if not buffer or buffer[0].shape[0] < user.shape[0]:
            buffer[:] = [items.new_empty((user.shape[0], items.shape[0]))]
        return torch.mm(user, items.T, out=buffer[0][: user.shape[0]])

    return fn


def evaluate_ranking(
    scores: Any, prep: Prepared, part: str = "test", ks: tuple[int, ...] = DEFAULT_KS,
    users: np.ndarray | None = None, writable_scores: bool = False,
) -> Any:
    """Full-corpus ranking of ``part`` ('valid' or 'test') by any scorer, seen items masked
    (train for valid; train + valid for test).

    Args:
        scores: ``users [b] -> scores of every item [b, N]``.
        writable_scores: ``scores`` hands each result over for ranking to overwrite (a new
            tensor per call, or a buffer it refills on the next call).
        users: the users to rank (None: for 'valid' the fixed sample of
            :func:`validation_users`, else every user with a target in ``part``).
    """
    from clusterneg.eval.evaluate import evaluate_scores

    targets = prep.test_items if part == "test" else prep.valid_items
    exclude = prep.train_valid_items if part == "test" else prep.train_items
    if users is None and part == "valid":
        users = validation_users(prep)  # the fixed sample, or None for every user
    if users is None:
        users = np.flatnonzero(targets.row_lengths() > 0)
    pop = prep.dataset.item_popularity(prep.split.train)
    return evaluate_scores(scores, users, targets, exclude, prep.dataset.n_items,
                           ks=ks, item_popularity=pop, writable_scores=writable_scores)


def evaluate_model(
    model: TwoTower, prep: Prepared, part: str = "test", ks: tuple[int, ...] = DEFAULT_KS,
    users: np.ndarray | None = None,
) -> Any:
    """:func:`evaluate_ranking` with the two-tower model's scores (its matmul buffer is
    refilled per chunk, so ranking masks it in place)."""
    return evaluate_ranking(score_fn(model), prep, part, ks, users, writable_scores=True)


def validation_users(prep: Prepared) -> np.ndarray | None:
    """The users per-epoch validation ranks: a fixed sample of ``valid_users`` of them
    (seeded by ``split_seed``, sorted), or None for all of them.

    Example:
        >>> prep = prepare(ExperimentConfig("ml-100k", encoder="none", valid_users=100))
        >>> users = validation_users(prep)
        >>> len(users), bool((np.diff(users) > 0).all())
        (100, True)
    """
    n = prep.config.valid_users
    users = np.flatnonzero(prep.valid_items.row_lengths() > 0)
    if n <= 0 or n >= len(users):
        return None
    rng = np.random.default_rng(prep.config.split_seed)
    return np.sort(rng.choice(users, n, replace=False))


def run(
    prep: Prepared, model_cfg: ModelConfig, train_cfg: TrainConfig,
    out_dir: Path | None = None, progress: Any | None = None, keep_model: bool = False,
    checkpoint: Any | None = None, label: str | None = None,
) -> RunResult:
    """Train one configuration on ``prep`` and evaluate it on the test split (``checkpoint``:
    a :class:`~clusterneg.train.state.Checkpointing` for resumable training, or None;
    ``label``: the name its log lines and progress bar show, e.g. ``goobs@cached``)."""
    use_content = prep.config.use_content and prep.content is not None

    sample = validation_users(prep)

    def valid_fn(model: TwoTower) -> dict[str, float]:
        return evaluate_model(model, prep, "valid", users=sample).summary

    res = train(prep.train_data(use_content), model_cfg, train_cfg, eval_fn=valid_fn,
                progress=progress, checkpoint=checkpoint, label=label)
    ev = evaluate_model(res.model, prep, "test")
    config = {"experiment": prep.config.to_dict(), "model": model_cfg.to_dict(),
              "train": train_cfg.to_dict(), "sampler": res.sampler.config_dict()}
    out = RunResult(
        metrics=ev.summary, exposure=ev.exposure,
        valid=res.epochs[res.best_epoch].get("valid", {}) if res.epochs else {},
        train=_train_record(res), config=config, per_user=ev.per_user,
        topk=ev.topk, eval_users=ev.users, buckets=ev.buckets,
        model=res.model if keep_model else None,
    )
    if out_dir is not None:
        metrics = {"test": out.metrics, "exposure": out.exposure, "valid": out.valid,
                   "train": out.train}
        save_checkpoint(Path(out_dir), res.model.state_dict(), config, metrics,
                        extra_tensors=_cluster_tensors(prep, config))
    return out


def _cluster_tensors(prep: Prepared, config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Centroids and item clusters kept in the run, so serving can assign new items to the
    nearest centroid without re-clustering (cluster names go into ``config``)."""
    info = prep.cluster_info
    if info is None or prep.item_cluster is None:
        return {}
    if info.names is not None:
        config["cluster_names"] = list(info.names)
    return {"centroids": torch.as_tensor(np.asarray(info.centroids, np.float32)),
            "item_cluster": torch.as_tensor(prep.item_cluster)}


def _train_record(res: TrainResult) -> dict[str, Any]:
    return {"seconds": res.seconds, "train_seconds": res.train_seconds,
            "examples_per_s": res.examples_per_s, "steps": res.steps,
            "epochs": len(res.epochs), "best_epoch": res.best_epoch,
            "curve": [dict(r) for r in res.epochs],
            "sampler_stats": res.sampler.stats()}
