"""Training options, as one typed dataclass saved beside every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from clusterneg.errors import ConfigError, check_known

#: ``TrainConfig.optimizer`` names (``clusterneg.train.optimizer``)
OPTIMIZERS = ("adam", "lazy-adam")


@dataclass
class TrainConfig:
    """How to train one two-tower model.

    Args:
        sampler: negative sampler name (``clusterneg.samplers.SAMPLER_NAMES``).
        sampler_options: keyword options for that sampler (e.g. ``{"n_negatives": 16}``).
        epochs: maximum number of passes over the training interactions.
        max_steps: stop after this many optimiser steps (None: no limit).
        batch_size: examples per step B (also the number of in-batch candidates).
        lr: Adam learning rate.
        weight_decay: Adam weight decay (L2) on all parameters (``adam`` only).
        optimizer: ``adam`` (dense fused Adam) or ``lazy-adam`` (Adam on the embedding rows
            a batch looked up; ``clusterneg.train.optimizer``).
        logq_correction: subtract log q from every candidate's logit (logQ correction;
            how q is computed is the sampler's ``logq_mode`` option).
        patience: early stopping: epochs without improvement of ``valid_metric`` before stop.
        valid_metric: validation metric that selects the best epoch (never a test metric).
        eval_every: evaluate on validation every this many epochs.
        seed: seeds the model initialisation, shuffling and the sampler.
        threads: torch intra-op threads (0: leave torch's default).
        device: torch device.
    """

    sampler: str = "in-batch"
    sampler_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 40
    max_steps: int | None = None
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    logq_correction: bool = True
    patience: int = 4
    valid_metric: str = "recall@50"
    eval_every: int = 1
    seed: int = 0
    threads: int = 0
    device: str = "cpu"

    def validate(self) -> TrainConfig:
        for name in ("epochs", "batch_size", "patience", "eval_every"):
            value = getattr(self, name)
            if value <= 0:
                raise ConfigError(f"train option {name} must be positive, got {value}")
        if self.lr <= 0:
            raise ConfigError(f"learning rate must be positive, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}; "
                              f"got {self.optimizer!r}")
        if self.optimizer == "lazy-adam" and self.weight_decay:
            raise ConfigError("--optimizer lazy-adam has no weight decay; use --optimizer adam "
                              "or --weight-decay 0")
        if self.batch_size < 2:
            raise ConfigError("batch_size must be at least 2 (in-batch negatives)")
        from clusterneg.samplers import sampler_options

        known = sampler_options(self.sampler)  # ConfigError for an unknown sampler name
        check_known(f"{self.sampler} option", self.sampler_options, sorted(known))
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
