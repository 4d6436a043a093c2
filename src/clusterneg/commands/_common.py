"""Pieces shared by the command modules: rich console, progress, metric tables, option
parsing. Commands only parse and call the library (STYLE.md, spaCy CLI)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from clusterneg.errors import ConfigError

console = Console(stderr=False)
err_console = Console(stderr=True)


def make_progress() -> Progress:
    """A rich progress bar on stderr (quiet when stderr is not a terminal)."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=False,
    )


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
