"""``clusterneg compare``: every sampler, same model, same data, same budget, several seeds.

For each sampler a small tuning budget (the same number of trials for every sampler) is spent
on the validation split with the first seed; the configuration with the best validation metric
is then trained with every seed and evaluated once on the test split. Test numbers never feed
back into any choice.

References:
    Ji et al., arXiv 2607.00448, 2026, section "Reported results" (HR@50/HR@100 over the whole
    corpus against in-batch, DNS, CBNS, ANCE and GOOBS; top-100 exposure share).
"""

from __future__ import annotations

import itertools
import logging
import logging.handlers
import multiprocessing
import os
import random
import shutil
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clusterneg.errors import ConfigError, check_known
from clusterneg.experiment import Prepared, RunResult, run
from clusterneg.model import ModelConfig
from clusterneg.samplers import SAMPLER_NAMES, SAMPLERS, sampler_of, sampler_options, spec_name
from clusterneg.train.config import TrainConfig

log = logging.getLogger(__name__)

# Every sampler tunes the temperature and the learning rate, plus the options of its
# class's ``tuning_grid``. The learning rate is tuned as a factor of the comparison's ``--lr``:
# on amazon-3cat the default 0.002 under-tuned the in-batch baseline by 2% HR@50 against
# 0.005 (bench/results/compare/amazon-3cat-adam-lr5), more than some samplers' gains.
TEMPERATURES = (0.1, 0.2, 0.3)
LR_FACTORS = (0.5, 1.0, 2.5)


@dataclass
class CompareConfig:
    """What ``compare`` runs.

    Args:
        samplers: sampler specs, ``NAME`` or ``NAME@LABEL`` (the same sampler twice with
            different options), in table order (``in-batch`` first as the reference).
        seeds: number of seeds per sampler (seeds 0..n-1).
        budget: tuning trials per sampler on the validation split (1: defaults only).
        model: tower configuration shared by every run.
        train: training options shared by every run (sampler fields are overridden).
        sampler_options: fixed options per sampler spec applied before tuning.
    """

    samplers: list[str] = field(default_factory=lambda: list(SAMPLER_NAMES))
    seeds: int = 1
    budget: int = 1
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sampler_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def validate(self) -> CompareConfig:
        check_known("sampler", [spec_name(s) for s in self.samplers], SAMPLER_NAMES)
        for spec in self.samplers:
            sampler_of(spec)  # the label too
        twice = sorted({s for s in self.samplers if self.samplers.count(s) > 1})
        if twice:
            raise ConfigError(f"sampler(s) {twice} listed twice; to run one sampler with two "
                              "option sets, label one: NAME@LABEL")
        if self.seeds < 1 or self.budget < 1:
            raise ConfigError("seeds and budget must be at least 1")
        return self


@dataclass
class Trial:
    """One tuning candidate: a temperature, sampler options and a learning rate (None: the
    comparison's own, ``CompareConfig.train.lr``)."""

    temperature: float
    options: dict[str, Any]
    lr: float | None = None


def tuning_trials(sampler: str, budget: int, base: ModelConfig, seed: int = 0,
                  fixed: dict[str, Any] | None = None, lr: float | None = None) -> list[Trial]:
    """The first ``budget`` trials of the sampler's grid; trial 0 is always the defaults.

    The grid is every temperature of ``TEMPERATURES`` x every learning rate ``lr`` x
    ``LR_FACTORS`` (``lr``: the comparison's; None, TrainConfig's default) x the sampler's
    ``tuning_grid``. The temperature x learning-rate points are shuffled with ``seed``, the
    same order for every sampler, and walked in that order, each point with the next of
    the sampler's option combinations (shuffled too, cycling): so trial ``i`` of every
    sampler trains at the same temperature and learning rate, and a budget smaller than a
    grid spends its draws on the shared settings alike, whatever the size of each
    sampler's own grid (in-batch's 9 points, cluster-goobs's 216). The base point comes
    last in each pass (trial 0 already trains there); later passes pair every point with
    every other option combination. A grid point that is the defaults again (the base
    temperature, the base learning rate, and every option at its default or at its
    ``fixed`` value) is left out: it would spend a trial on trial 0's configuration.

    Example:
        >>> [(t.temperature, t.lr) for t in tuning_trials(
        ...     "in-batch", 4, ModelConfig(temperature=0.2), lr=0.002)]
        [(0.2, 0.002), (0.3, 0.002), (0.2, 0.005), (0.1, 0.002)]
        >>> [(t.temperature, t.lr) for t in tuning_trials(
        ...     "cluster-goobs", 4, ModelConfig(temperature=0.2), lr=0.002)]
        [(0.2, 0.002), (0.3, 0.002), (0.2, 0.005), (0.1, 0.002)]
    """
    name = sampler_of(sampler)
    base_lr = TrainConfig.lr if lr is None else lr
    grid = SAMPLERS[name].tuning_grid
    keys = sorted(grid)
    combos = [dict(zip(keys, vals, strict=True)) for vals in itertools.product(
        *(grid[k] for k in keys))] or [{}]
    rng = random.Random(seed)
    points = [(t, round(base_lr * f, 12)) for t in TEMPERATURES for f in LR_FACTORS]
    rng.shuffle(points)  # the same order for every sampler: no sampler-dependent draw yet
    base_point = (base.temperature, base_lr)
    points = [p for p in points if p != base_point] + [p for p in points if p == base_point]
    random.Random(seed + 1).shuffle(combos)
    trials = [Trial(t, combos[(i + r) % len(combos)], lr_)
              for r in range(len(combos)) for i, (t, lr_) in enumerate(points)]
    defaults = sampler_options(name) | dict(fixed or {})
    trials = [t for t in trials if not (
        t.temperature == base.temperature and t.lr == base_lr
        and all(defaults.get(k, object()) == v for k, v in t.options.items()))]
    return [Trial(base.temperature, {}, base_lr)] + trials[: max(budget - 1, 0)]


def tune_sampler(
    prep: Prepared, sampler: str, cfg: CompareConfig, progress: Any | None = None,
    jobs: int = 1,
) -> tuple[Trial, list[dict[str, Any]]]:
    """Pick the trial with the best validation metric (seed 0). Returns (best, all scores).

    ``jobs`` > 1 trains that many trials at once (:func:`run_tasks`)."""
    return _tune_all(prep, replace(cfg, samplers=[sampler]), progress, None, jobs)[0][sampler]


def _scores(cfg: CompareConfig, trials: list[Trial], results: list[RunResult]
            ) -> list[dict[str, Any]]:
    """Every trial's settings and validation metric (the report's tuning table)."""
    return [{"temperature": t.temperature, "lr": _lr(t, cfg), "options": t.options,
             "valid": r.valid.get(cfg.train.valid_metric, float("nan"))}
            for t, r in zip(trials, results, strict=True)]


def _lr(trial: Trial, cfg: CompareConfig) -> float:
    """The learning rate ``trial`` trains with."""
    return cfg.train.lr if trial.lr is None else trial.lr


def _run_one(
    prep: Prepared, sampler: str, trial: Trial, cfg: CompareConfig, seed: int,
    progress: Any | None, keep_model: bool = False,
) -> RunResult:
    opts = dict(cfg.sampler_options.get(sampler, {})) | trial.options
    model_cfg = replace(cfg.model, temperature=trial.temperature)
    train_cfg = replace(cfg.train, sampler=sampler_of(sampler), sampler_options=opts,
                        seed=seed, lr=_lr(trial, cfg))
    return run(prep, model_cfg, train_cfg, progress=progress, keep_model=keep_model,
               label=sampler)


# --- Several runs at once (issue 12: the comparison's wall time) ----------------------------


@dataclass(frozen=True)
class RunTask:
    """One training run of a comparison.

    Args:
        sampler, trial, seed: what to train.
        run_dir: where to write the run directory (weights, config, metrics) as soon as it
            is trained, by whichever process trained it; None keeps nothing on disk.
        provenance: recorded in that directory.
    """

    sampler: str
    trial: Trial = field(hash=False)
    seed: int
    run_dir: Path | None = None
    provenance: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def _execute(prep: Prepared, task: RunTask, cfg: CompareConfig,
             progress: Any | None = None) -> RunResult:
    """Train ``task``, write its run directory when it has one, return it without weights."""
    keep = task.run_dir is not None
    res = _run_one(prep, task.sampler, task.trial, cfg, task.seed, progress, keep_model=keep)
    if keep:
        from clusterneg.train.checkpoint import save_run

        save_run(task.run_dir, res, res.model, task.provenance, overwrite=True)
        res.model = None
    return res


_WORKER_PREP: Prepared | None = None  # the Prepared a worker process received once
#: loggers whose records a worker sends back to the main process (the per-epoch lines)
RELAYED = ("clusterneg.train.trainer",)


def _init_worker(prep: Prepared, threads: int, logs: Any = None,
                 levels: dict[str, int] | None = None) -> None:
    global _WORKER_PREP
    _WORKER_PREP = prep
    torch.set_num_threads(threads)
    for name, level in (levels or {}).items():
        logger = logging.getLogger(name)
        logger.handlers = [logging.handlers.QueueHandler(logs)]
        logger.setLevel(level)
        logger.propagate = False


class _Relay(logging.Handler):
    """Main process: hand a worker's log record to the same-named logger here, so a
    worker's epoch lines print as the in-process run's would."""

    def emit(self, record: logging.LogRecord) -> None:
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)


def _execute_in_worker(task: RunTask, cfg: CompareConfig) -> RunResult:
    assert _WORKER_PREP is not None, "worker not initialised"
    return _execute(_WORKER_PREP, task, cfg)


def worker_threads(cfg: CompareConfig, jobs: int) -> int:
    """torch threads per worker: ``--threads`` when given, else the cores shared out.

    Example:
        >>> worker_threads(CompareConfig(train=TrainConfig(threads=1)), jobs=4)
        1
    """
    if cfg.train.threads > 0:
        return cfg.train.threads
    return max(1, (os.cpu_count() or 1) // max(jobs, 1))


def run_tasks(
    prep: Prepared, tasks: Sequence[RunTask], cfg: CompareConfig, jobs: int = 1,
    progress: Any | None = None,
) -> Iterator[tuple[RunTask, RunResult]]:
    """Train every task; yield (task, result) as each one finishes.

    With ``jobs`` > 1, ``jobs`` runs train at once, each in its own process (spawned, so no
    thread pool is inherited half-initialised; each gets ``prep`` once, and
    :func:`worker_threads` torch threads). A run's numbers do not depend on where it ran:
    each run seeds everything from its own seed. The workers' per-epoch log lines are sent
    back and printed here. On an error or Ctrl-C the runs not started are cancelled; the
    run directories already written stay (``--resume``).
    """
    if jobs <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield task, _execute(prep, task, cfg, progress)
        return
    ctx = multiprocessing.get_context("spawn")
    logs = ctx.Queue()
    levels = {name: logging.getLogger(name).getEffectiveLevel() for name in RELAYED}
    listener = logging.handlers.QueueListener(logs, _Relay())
    listener.start()
    pool = ProcessPoolExecutor(min(jobs, len(tasks)), mp_context=ctx,
                               initializer=_init_worker,
                               initargs=(prep, worker_threads(cfg, jobs), logs, levels))
    try:
        futures = {pool.submit(_execute_in_worker, task, cfg): task for task in tasks}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        listener.stop()


def compare(
    prep: Prepared, cfg: CompareConfig, progress: Any | None = None, store: Any | None = None,
    provenance: dict[str, Any] | None = None, jobs: int = 1,
) -> tuple[dict[str, Any], dict[str, list[RunResult]]]:
    """Tune and train every sampler over every seed; returns (results dict, raw runs).

    The results dict follows the ``results.json`` schema of issue 5 (without "summary",
    which :func:`clusterneg.report.summarize` adds).

    Args:
        store: a :class:`clusterneg.compare_store.RunStore`: each run is saved as it
            finishes, and runs (and tuning choices) already in it are loaded, not redone.
        provenance: recorded in every saved run directory.
        jobs: runs trained at once (:func:`run_tasks`); the tuning trials of every sampler
            first, then every sampler's seeds. The results do not depend on it.
    """
    cfg.validate()
    total = len(cfg.samplers) * cfg.seeds
    task_bar = progress.add_task("compare", total=total) if progress is not None else None
    chosen, first = _tune_all(prep, cfg, progress, store, jobs, provenance)
    done: dict[tuple[str, int], tuple[RunResult, dict[str, Any]]] = {}
    todo: list[RunTask] = []
    for sampler in cfg.samplers:
        best, scores = chosen[sampler]
        for seed in range(cfg.seeds):
            if seed == 0 and sampler in first:  # the best tuning trial is this very run
                row = _run_row(sampler, 0, first[sampler], scores)
                if store is not None:
                    store.add_row(sampler, 0, row)
                done[(sampler, 0)] = (first[sampler], row)
                log.info("%s seed 0: the chosen tuning trial, kept", sampler)
                _advance(progress, task_bar, len(done), total, sampler, seed)
                continue
            row = store.finished(sampler, seed) if store is not None else None
            if row is not None:
                log.info("%s seed %d: already finished, loaded", sampler, seed)
                done[(sampler, seed)] = (store.load(sampler, seed, prep), row)
                _advance(progress, task_bar, len(done), total, sampler, seed)
                continue
            todo.append(RunTask(sampler, best, seed,
                                store.run_dir(sampler, seed) if store is not None else None,
                                provenance or {}))
    for task, res in run_tasks(prep, todo, cfg, jobs, progress):
        row = _run_row(task.sampler, task.seed, res, chosen[task.sampler][1])
        if store is not None:
            store.add_row(task.sampler, task.seed, row)
        done[(task.sampler, task.seed)] = (res, row)
        _advance(progress, task_bar, len(done), total, task.sampler, task.seed)
    raw: dict[str, list[RunResult]] = {}
    runs: list[dict[str, Any]] = []
    for sampler in cfg.samplers:
        raw[sampler] = []
        for seed in range(cfg.seeds):
            res, row = done[(sampler, seed)]
            raw[sampler].append(res)
            runs.append(row)
    return _results_header(prep) | {"runs": runs}, raw


def _advance(progress: Any | None, bar: Any, n: int, total: int, sampler: str,
             seed: int) -> None:
    log.info("run %d/%d done: %s seed %d", n, total, sampler, seed)
    if progress is not None:
        progress.update(bar, advance=1, description=f"compare: {n}/{total} runs done")


def _tune_all(prep: Prepared, cfg: CompareConfig, progress: Any | None, store: Any | None,
              jobs: int, provenance: dict[str, Any] | None = None,
              ) -> tuple[dict[str, tuple[Trial, list[dict[str, Any]]]], dict[str, RunResult]]:
    """Each sampler's tuning choice: the one a resumed comparison already made, else the
    best of its trials (every sampler's trials trained together, ``jobs`` at a time).

    Also returns, for each sampler tuned now, its best trial's run: trials train with seed 0
    and the comparison's settings, so that run *is* the sampler's seed-0 run and is not
    trained twice (a budget of B costs B + seeds - 1 runs per sampler, not B + seeds). With a
    ``store`` each trial is written to ``tuning/runs/SAMPLER-trialI``; only the best so far is
    kept on disk, and the chosen one becomes ``runs/SAMPLER-seed0``.
    """
    chosen: dict[str, tuple[Trial, list[dict[str, Any]]]] = {}
    trials: dict[str, list[Trial]] = {}  # the samplers tuned now
    for sampler in cfg.samplers:
        saved = store.tuning(sampler) if store is not None else None
        if saved is not None:
            # a choice saved before the learning rate was tuned ran at the comparison's
            chosen[sampler] = (Trial(saved["temperature"], saved["options"],
                                     saved.get("lr", cfg.train.lr)), saved["scores"])
        else:
            trials[sampler] = tuning_trials(sampler, cfg.budget, cfg.model,
                                            fixed=cfg.sampler_options.get(sampler),
                                            lr=cfg.train.lr)
    tasks = [RunTask(s, t, 0, store.trial_dir(s, i) if store is not None else None,
                     provenance or {})
             for s, ts in trials.items() if len(ts) > 1 for i, t in enumerate(ts)]
    rank = {id(task): i for i, task in enumerate(tasks)}
    results: dict[int, RunResult] = {}
    leader: dict[str, RunTask] = {}  # each sampler's best trial so far
    for task, res in run_tasks(prep, tasks, cfg, jobs, progress):
        results[rank[id(task)]] = res
        lead = leader.get(task.sampler)
        ahead = lead is None or _ranks_above(
            _score(cfg, res), rank[id(task)], _score(cfg, results[rank[id(lead)]]),
            rank[id(lead)])
        if ahead:
            loser, leader[task.sampler] = lead, task
        else:
            loser = task
        if loser is not None and loser.run_dir is not None:
            shutil.rmtree(loser.run_dir, ignore_errors=True)
    first: dict[str, RunResult] = {}
    for sampler, ts in trials.items():
        if len(ts) == 1:
            chosen[sampler] = (ts[0], [])
        else:
            mine = [results[rank[id(t)]] for t in tasks if t.sampler == sampler]
            won = leader[sampler]  # the one choice: kept on disk, reported, reused
            chosen[sampler] = (won.trial, _scores(cfg, ts, mine))
            first[sampler] = results[rank[id(won)]]
            if store is not None:
                store.adopt_trial(sampler, won.run_dir)
        if store is not None:
            best, scores = chosen[sampler]
            store.save_tuning(sampler, {"temperature": best.temperature, "lr": _lr(best, cfg),
                                        "options": best.options, "scores": scores})
    return chosen, first


def _score(cfg: CompareConfig, res: RunResult) -> float:
    """A trial's validation metric (a failed, NaN one ranks below every real one)."""
    return float(np.nan_to_num(res.valid.get(cfg.train.valid_metric, float("nan")), nan=-1.0))


def _ranks_above(score: float, index: int, other: float, other_index: int) -> bool:
    """Whether a trial beats another: the higher validation score, and on a tie the earlier
    trial (trial 0, the defaults, wins every tie).

    Example:
        >>> [_ranks_above(0.5, 3, 0.4, 0), _ranks_above(0.5, 3, 0.5, 0),
        ...  _ranks_above(0.5, 0, 0.5, 3)]
        [True, False, True]
    """
    return score > other or (score == other and index < other_index)


def _run_row(sampler: str, seed: int, res: RunResult, tuning: list[dict]) -> dict[str, Any]:
    train = {k: res.train[k] for k in ("seconds", "train_seconds", "examples_per_s", "steps",
                                       "epochs", "best_epoch")}
    train["sampler_stats"] = res.train.get("sampler_stats", {})
    metric = res.config["train"].get("valid_metric", "recall@50")
    train["curve"] = [{"epoch": r["epoch"], "loss": r["loss"],
                       "valid": (r.get("valid") or {}).get(metric)}
                      for r in res.train.get("curve", [])]
    return {"sampler": sampler, "seed": seed, "metrics": res.metrics, "exposure": res.exposure,
            "valid": res.valid, "train": train, "config": res.config | {"tuning": tuning}}


def _results_header(prep: Prepared) -> dict[str, Any]:
    sp = prep.split
    return {"dataset": prep.dataset.name, "split": sp.method,
            "n_users": prep.dataset.n_users, "n_items": prep.dataset.n_items,
            "n_train": len(sp.train), "n_valid": len(sp.valid), "n_test": len(sp.test),
            "n_clusters": prep.n_clusters, "experiment": prep.config.to_dict()}
