"""``clusterneg data stats``: load a dataset and print its summary statistics."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from clusterneg.commands._common import console

data_app = typer.Typer(help="Inspect datasets.", no_args_is_help=True)


@data_app.command("stats")
def stats_command(
    dataset: str = typer.Option("ml-100k", help="Built-in name (ml-100k) or data directory."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    min_rating: float = typer.Option(None, help="Keep only interactions rated at least this."),
) -> None:
    """Users, items, interactions, density, popularity concentration, text coverage."""
    from clusterneg.data.load import load_dataset
    from clusterneg.data.stats import dataset_stats

    stats = dataset_stats(load_dataset(dataset, min_rating=min_rating))
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
        return
    console.print(stats_table(stats))


def stats_table(stats: dict[str, object]) -> Table:
    """A two-column rich table of :func:`dataset_stats` output."""
    table = Table(title=f"dataset {stats['name']}")
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for key, value in stats.items():
        if key == "text_fields" and isinstance(value, dict):
            for name, frac in value.items():
                table.add_row(f"text field '{name}' empty", f"{frac:.1%}")
        elif isinstance(value, dict):
            table.add_row(key, ", ".join(f"{k} {_fmt(v)}" for k, v in value.items()))
        else:
            table.add_row(key, _fmt(value))
    return table


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.0f}"
    return "-" if value is None else str(value)


def register(app: typer.Typer) -> None:
    """Attach ``clusterneg data ...`` to the root app."""
    app.add_typer(data_app, name="data")
