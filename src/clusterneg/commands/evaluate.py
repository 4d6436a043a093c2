"""``clusterneg evaluate RUN``: rank the whole corpus with a saved run (from ``train --out``
or one of ``compare --out``'s ``runs/*`` directories), optionally saving every user's ranked
list as Parquet so anyone can recompute the metrics."""

from __future__ import annotations

from pathlib import Path

import typer

from clusterneg.commands._common import Threads, console, metrics_table, say
from clusterneg.errors import ConfigError
from clusterneg.outputs import check_file_output


def evaluate_command(
    run_dir: Path = typer.Argument(..., help="A run directory written by train, or one of "
                                   "compare's OUT/runs/* directories."),
    part: str = typer.Option("test", "--split", help="test or valid."),
    save_topk: Path = typer.Option(None, help="Write every user's top-K list (Parquet)."),
    k: int = typer.Option(100, help="List length for --save-topk (1 to 100)."),
    overwrite: bool = typer.Option(False, help="Replace an existing --save-topk file."),
    threads: Threads = 0,
) -> None:
    """Evaluate a saved run over the whole corpus (seen items masked)."""
    from clusterneg.validate import at_least, non_negative, one_of

    one_of("--split", part, ("test", "valid"))
    at_least("--k", k, 1)
    if k > 100:
        raise ConfigError(f"--k must be between 1 and 100 (the longest list evaluated), got {k}")
    non_negative("--threads", threads)
    if save_topk is not None:
        check_file_output(save_topk, overwrite, "--save-topk")
    if threads:
        import torch

        torch.set_num_threads(threads)
    from clusterneg.runs import evaluate_run

    ev = evaluate_run(run_dir, part=part, save_topk=save_topk, k=k)
    console.print(metrics_table(f"{run_dir} ({part})", ev.summary, ev.exposure))
    if save_topk is not None:
        say(f"top-{k} lists written to {save_topk}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)
