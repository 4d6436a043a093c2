"""Option checks that run before any work: cheap, pure Python, one :class:`ConfigError` each.

Every computing command calls these on its options before loading data, embedding or
training, so a bad value costs the user a second, not a run (issue 9, "one error contract").

Example:
    >>> parse_n_clusters("auto"), parse_n_clusters("12")
    ('auto', 12)
    >>> positive("lr", 0.01)
    0.01
"""

from __future__ import annotations

import math
from typing import Any

from clusterneg.errors import ConfigError


def parse_n_clusters(value: str | int, option: str = "--n-clusters") -> int | str:
    """``"auto"`` or a whole number of clusters >= 2: the one place ``n_clusters`` is parsed."""
    if isinstance(value, int) or str(value).strip() != "auto":
        try:
            k = int(str(value).strip())
        except ValueError:
            raise ConfigError(f"{option} must be an integer >= 2 or 'auto', "
                              f"got {value!r}") from None
        if k < 2:
            raise ConfigError(f"{option} must be at least 2 (or 'auto'), got {k}")
        return k
    return "auto"


#: Most concepts a cluster can be split into (each comes from a labelled title; the concept
#: module labels 12 titles per cluster).
MAX_CONCEPTS = 12


def parse_concepts(value: Any, encoder: str = "minilm", option: str = "--concepts") -> int:
    """0 (plain k-means) or 2..MAX_CONCEPTS LLM concepts per k-means cluster; concepts need
    a text encoder.

    Example:
        >>> parse_concepts(0), parse_concepts("4")
        (0, 4)
    """
    try:
        n = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{option} must be an integer, got {value!r}") from None
    if n != 0 and not 2 <= n <= MAX_CONCEPTS:
        raise ConfigError(f"{option} must be 0 (plain k-means) or 2..{MAX_CONCEPTS} concepts "
                          f"per cluster, got {n}")
    if n and (encoder == "none" or encoder == "smollm2" or encoder.endswith(".gguf")):
        raise ConfigError(f"{option} needs item embeddings without post-processing (labels "
                          f"are embedded alone), so not --encoder {encoder}; use minilm")
    return n


def finite(option: str, value: float) -> float:
    """``value`` unless it is not a number, NaN or infinite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{option} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{option} must be a finite number, got {value}")
    return value


def positive(option: str, value: float | int) -> float | int:
    """``value`` when it is finite and > 0."""
    finite(option, value)
    if value <= 0:
        raise ConfigError(f"{option} must be positive, got {value}")
    return value


def non_negative(option: str, value: float | int) -> float | int:
    """``value`` when it is finite and >= 0."""
    finite(option, value)
    if value < 0:
        raise ConfigError(f"{option} must be zero or positive, got {value}")
    return value


def at_least(option: str, value: int, low: int) -> int:
    """``value`` when it is >= ``low``."""
    if value < low:
        raise ConfigError(f"{option} must be at least {low}, got {value}")
    return value


def one_of(option: str, value: str, choices: tuple[str, ...] | list[str]) -> str:
    """``value`` when it is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{option} must be one of {', '.join(choices)}; got {value!r}")
    return value


def training_options(**opts: Any) -> None:
    """Check the numeric training/model options shared by ``train`` and ``compare``.

    Keys that are absent or None are skipped; names are the CLI option names without ``--``.
    """
    checks = {"epochs": positive, "batch-size": positive, "lr": positive, "dim": positive,
              "temperature": positive, "patience": positive, "seeds": positive,
              "budget": positive, "weight-decay": non_negative, "history-len": non_negative,
              "max-steps": positive, "threads": non_negative, "split-seed": non_negative,
              "seed": non_negative}
    for name, value in opts.items():
        key = name.replace("_", "-")
        if value is not None and key in checks:
            checks[key](f"--{key}", value)
    if opts.get("batch_size") is not None and opts["batch_size"] < 2:
        raise ConfigError(f"--batch-size must be at least 2 (in-batch negatives), "
                          f"got {opts['batch_size']}")


SPLITS = ("auto", "leave-last-out", "random", "temporal")
DEVICES = ("cpu", "cuda", "mps")


def device(value: str) -> str:
    """``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    base = value.split(":", 1)[0]
    if base not in DEVICES or (":" in value and not value.split(":", 1)[1].isdigit()):
        raise ConfigError(f"--device must be cpu, cuda, cuda:N or mps; got {value!r}")
    return value
