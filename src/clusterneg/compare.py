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
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from clusterneg.errors import ConfigError
from clusterneg.experiment import ExperimentConfig, Prepared, RunResult, run
from clusterneg.model import ModelConfig
from clusterneg.samplers import SAMPLER_NAMES, SAMPLERS
from clusterneg.train.config import TrainConfig

log = logging.getLogger(__name__)

# Options each sampler may be tuned over; every sampler also tunes the temperature.
TEMPERATURES = (0.1, 0.2, 0.3)
NEGATIVE_GRID: dict[str, dict[str, list[Any]]] = {
    "in-batch": {},
    "mixed": {"n_negatives": [32, 128]},
    "cross-batch": {"n_batches": [2, 8]},
    "dns": {"n_candidates": [32, 128]},
    "ance": {"n_negatives": [8, 32]},
    "goobs": {"n_negatives": [32, 128]},
    "cluster-goobs": {"n_negatives": [32, 128]},
}


@dataclass
class CompareConfig:
    """What ``compare`` runs.

    Args:
        samplers: sampler names, in table order (``in-batch`` first as the reference).
        seeds: number of seeds per sampler (seeds 0..n-1).
        budget: tuning trials per sampler on the validation split (1: defaults only).
        model: tower configuration shared by every run.
        train: training options shared by every run (sampler fields are overridden).
        sampler_options: fixed options per sampler applied before tuning.
    """

    samplers: list[str] = field(default_factory=lambda: list(SAMPLER_NAMES))
    seeds: int = 1
    budget: int = 1
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sampler_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def validate(self) -> CompareConfig:
        unknown = [s for s in self.samplers if s not in SAMPLER_NAMES]
        if unknown:
            raise ConfigError(f"unknown sampler(s) {unknown}; expected some of {SAMPLER_NAMES}")
        if self.seeds < 1 or self.budget < 1:
            raise ConfigError("seeds and budget must be at least 1")
        return self


@dataclass
class Trial:
    """One tuning candidate: a temperature and sampler options."""

    temperature: float
    options: dict[str, Any]


def tuning_trials(sampler: str, budget: int, base: ModelConfig, seed: int = 0) -> list[Trial]:
    """The first ``budget`` trials of the sampler's grid; trial 0 is always the defaults.

    The rest of the grid is shuffled with a fixed seed so every sampler gets an unbiased
    draw of the same size.
    """
    grid = NEGATIVE_GRID.get(sampler) or getattr(SAMPLERS.get(sampler), "tuning_grid", {})
    keys = sorted(grid)
    combos = [dict(zip(keys, vals, strict=True)) for vals in itertools.product(
        *(grid[k] for k in keys))] or [{}]
    trials = [Trial(t, c) for t in TEMPERATURES for c in combos]
    rng = random.Random(seed)
    rng.shuffle(trials)
    return [Trial(base.temperature, {})] + trials[: max(budget - 1, 0)]


ProgressFn = Callable[[str], None]


def tune_sampler(
    prep: Prepared, sampler: str, cfg: CompareConfig, progress: Any | None = None,
) -> tuple[Trial, list[dict[str, Any]]]:
    """Pick the trial with the best validation metric (seed 0). Returns (best, all scores)."""
    trials = tuning_trials(sampler, cfg.budget, cfg.model)
    if len(trials) == 1:
        return trials[0], []
    scored = []
    for trial in trials:
        res = _run_one(prep, sampler, trial, cfg, seed=0, progress=progress)
        scored.append({"temperature": trial.temperature, "options": trial.options,
                       "valid": res.valid.get(cfg.train.valid_metric, float("nan"))})
    best = max(range(len(trials)), key=lambda i: np.nan_to_num(scored[i]["valid"], nan=-1.0))
    return trials[best], scored


def _run_one(
    prep: Prepared, sampler: str, trial: Trial, cfg: CompareConfig, seed: int,
    progress: Any | None,
) -> RunResult:
    opts = dict(cfg.sampler_options.get(sampler, {})) | trial.options
    model_cfg = replace(cfg.model, temperature=trial.temperature)
    train_cfg = replace(cfg.train, sampler=sampler, sampler_options=opts, seed=seed)
    return run(prep, model_cfg, train_cfg, progress=progress)


def compare(
    prep: Prepared, cfg: CompareConfig, progress: Any | None = None,
) -> tuple[dict[str, Any], dict[str, list[RunResult]]]:
    """Tune and train every sampler over every seed; returns (results dict, raw runs).

    The results dict follows the ``results.json`` schema of issue 5 (without "summary",
    which :func:`clusterneg.report.summarize` adds).
    """
    cfg.validate()
    raw: dict[str, list[RunResult]] = {}
    runs: list[dict[str, Any]] = []
    for sampler in cfg.samplers:
        best, scores = tune_sampler(prep, sampler, cfg, progress)
        raw[sampler] = []
        for seed in range(cfg.seeds):
            res = _run_one(prep, sampler, best, cfg, seed, progress)
            raw[sampler].append(res)
            runs.append(_run_row(sampler, seed, res, scores))
            log.info("%s seed %d hr@50 %.4f", sampler, seed, res.metrics.get("hr@50", np.nan))
    return _results_header(prep) | {"runs": runs}, raw


def _run_row(sampler: str, seed: int, res: RunResult, tuning: list[dict]) -> dict[str, Any]:
    train = {k: res.train[k] for k in ("seconds", "train_seconds", "examples_per_s", "steps",
                                       "epochs", "best_epoch")}
    train["sampler_stats"] = res.train.get("sampler_stats", {})
    return {"sampler": sampler, "seed": seed, "metrics": res.metrics, "exposure": res.exposure,
            "valid": res.valid, "train": train, "config": res.config | {"tuning": tuning}}


def _results_header(prep: Prepared) -> dict[str, Any]:
    sp = prep.split
    return {"dataset": prep.dataset.name, "split": getattr(sp, "method", str(prep.config.split)),
            "n_users": prep.dataset.n_users, "n_items": prep.dataset.n_items,
            "n_train": len(sp.train), "n_valid": len(sp.valid), "n_test": len(sp.test),
            "n_clusters": prep.n_clusters, "experiment": prep.config.to_dict()}


def default_experiment(dataset: str) -> ExperimentConfig:
    """The experiment ``compare`` runs when only a dataset is given."""
    return ExperimentConfig(dataset=dataset)
