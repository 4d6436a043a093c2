"""Pieces shared by the command modules: rich console, the one progress factory, metric
tables, option parsing. Commands only parse and call the library (STYLE.md, spaCy CLI).

The consoles never interpret rich markup: titles, cluster names and paths come from the
user's data and may hold ``[/INST]`` or ``[bold]`` (issue 9).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from clusterneg.errors import ConfigError, check_known

console = Console(stderr=False, markup=False, highlight=False, soft_wrap=True)
err_console = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)

# Options several commands share (compare, ladder, train, ...), declared once: same help
# everywhere; each command gives the default in its signature.
Split = Annotated[str, typer.Option(help="auto, leave-last-out, random, temporal.")]
UserId = Annotated[bool, typer.Option(help="User-id embedding in the user tower.")]
Threads = Annotated[int, typer.Option(help="torch threads (0: torch's default).")]
Optimizer = Annotated[str, typer.Option(
    help="adam (dense Adam) or lazy-adam (Adam on the embedding rows a batch looks up: "
         "cheaper on large catalogs, not the same update).")]
# The resumable-state options, declared once for every command that trains (train,
# train-stream): same names, defaults and help everywhere.
CheckpointEvery = Annotated[int, typer.Option(
    help="Write resumable state every N steps (0: never).")]
Resume = Annotated[bool, typer.Option(help="Continue from the newest resumable state.")]
StateDir = Annotated[Optional[Path], typer.Option(  # noqa: UP045 (typer needs Optional)
    help="Resumable state directory (default: OUT.state beside the run directory).")]

_VERBOSITY = 0  # -1 quiet, 0 normal, 1+ verbose


def set_verbosity(level: int) -> None:
    """-1 (``-q``): no progress and no per-epoch lines; 0: default; >= 1 (``-v``): more."""
    global _VERBOSITY
    _VERBOSITY = level


def verbosity() -> int:
    """The level set by ``-q``/``-v``."""
    return _VERBOSITY


def make_progress(*extra: ProgressColumn) -> Progress:
    """The one progress factory: a bar on stderr, off under ``-q`` and off a terminal.

    Task descriptions are labels such as ``train cluster-goobs seed 1 (run 3/14)``; they are
    printed literally, never as markup.
    """
    return Progress(
        TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
        *extra, TimeElapsedColumn(), TimeRemainingColumn(), console=err_console,
        # off a terminal a bar cannot redraw (and rich ends it with a blank line): the
        # per-epoch and per-run lines say what happens instead
        transient=False, disable=_VERBOSITY < 0 or not err_console.is_terminal,
    )


def say(message: str) -> None:
    """One status line on stderr (silent under ``-q``), shown above any progress bar."""
    if _VERBOSITY >= 0:
        err_console.print(message, soft_wrap=True)


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["n_negatives=16", "ratio=1:15"]`` -> ``{"n_negatives": 16, "ratio": "1:15"}``.

    Values are read as JSON when they parse (numbers, true/false, lists), else as strings.
    """
    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError(f"option '{pair}': expected KEY=VALUE")
        key, raw = pair.split("=", 1)
        try:
            out[key.strip().replace("-", "_")] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip().replace("-", "_")] = raw
    return out


def metrics_table(title: str, metrics: dict[str, float], exposure: dict[str, float]) -> Table:
    """A two-column table of ranking and exposure metrics."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in list(metrics.items()) + list(exposure.items()):
        table.add_row(key, f"{value:.4f}")
    return table


class _ConsoleHandler(logging.Handler):
    """Log records as plain lines on the shared stderr console (above any progress bar)."""

    def emit(self, record: logging.LogRecord) -> None:
        err_console.print(self.format(record), soft_wrap=True)


def show_epoch_lines() -> None:
    """Print the trainer's one line per epoch (loss, validation metric, best so far) and
    compare's one line per finished run (and what a resume extends), unless ``-q``."""
    if _VERBOSITY < 0:
        return
    for name in ("clusterneg.train.trainer", "clusterneg.compare", "clusterneg.compare_store"):
        logger = logging.getLogger(name)
        if not any(isinstance(h, _ConsoleHandler) for h in logger.handlers):
            logger.addHandler(_ConsoleHandler())
        logger.setLevel(logging.INFO)
        logger.propagate = False


def parse_sampler_name(name: str, labels: bool = False) -> str:
    """A known sampler name (ConfigError listing the names otherwise); with ``labels``, a
    sampler spec ``NAME@LABEL`` too (:func:`clusterneg.samplers.split_spec`)."""
    from clusterneg.samplers import SAMPLER_NAMES, split_spec

    name = name.strip()
    if labels and "@" in name:
        split_spec(name)
        return name
    check_known("sampler", [name], SAMPLER_NAMES)
    return name


def check_compute_options(opts: dict[str, Any]) -> None:
    """The cheap checks every computing command runs first: numbers finite and in range,
    a known split, a valid device, ``--n-clusters`` parsed (no torch import needed)."""
    from clusterneg.validate import (
        SPLITS,
        device,
        one_of,
        parse_concepts,
        parse_n_clusters,
        training_options,
    )

    training_options(**opts)
    if "split" in opts:
        one_of("--split", opts["split"], SPLITS)
    if "device" in opts:
        device(opts["device"])
    if "n_clusters" in opts:
        parse_n_clusters(opts["n_clusters"])
    if "concepts" in opts:
        parse_concepts(opts["concepts"], opts.get("encoder", "minilm"))
