"""``clusterneg evaluate RUN``: rank the whole corpus with a saved run, optionally saving
every user's ranked list as Parquet so anyone can recompute the metrics."""

from __future__ import annotations

from pathlib import Path

import typer

from clusterneg.commands._common import console, metrics_table
from clusterneg.runs import evaluate_run


def evaluate_command(
    run_dir: Path = typer.Argument(..., help="A run directory written by train/compare."),
    part: str = typer.Option("test", "--split", help="test or valid."),
    save_topk: Path = typer.Option(None, help="Write every user's top-K list (Parquet)."),
    k: int = typer.Option(100, help="List length for --save-topk."),
) -> None:
    """Evaluate a saved run over the whole corpus (seen items masked)."""
    ev = evaluate_run(run_dir, part=part, save_topk=save_topk, k=k)
    console.print(metrics_table(f"{run_dir} ({part})", ev.summary, ev.exposure))
    if save_topk is not None:
        console.print(f"top-{k} lists written to {save_topk}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)
