"""``clusterneg index RUN``: item-tower vectors -> a faiss index saved beside the run, with
its recall@100 against exact search printed."""

from __future__ import annotations

from pathlib import Path

import typer

from clusterneg import defaults as D
from clusterneg.commands._common import console
from clusterneg.index import KINDS, IndexSpec


def index_command(
    run_dir: Path = typer.Argument(..., help="A run directory written by train/compare."),
    kind: str = typer.Option(D.INDEX_KIND, help=f"Index kind: {', '.join(KINDS)}."),
    ef_search: int = typer.Option(IndexSpec.ef_search, help="HNSW query candidates."),
    nprobe: int = typer.Option(IndexSpec.nprobe, help="IVF cells scanned per query."),
    queries: int = typer.Option(1000, help="Users sampled to measure recall."),
) -> None:
    """Build the serving index of a run and measure its recall@100 against exact search."""
    from clusterneg.serve.run_index import build_run_index, save_run_index
    from clusterneg.serve.run_state import load_run_state

    spec = IndexSpec(kind, ef_search=ef_search, nprobe=nprobe).validate()
    if queries <= 0:
        from clusterneg.errors import ConfigError

        raise ConfigError(f"--queries must be positive, got {queries}")
    state = load_run_state(run_dir)
    index, report = build_run_index(state.model, spec, n_queries=queries)
    path = save_run_index(state.serving_dir, index, report)
    console.print(f"{report.kind} index of {report.n_items} items written to {path} "
                  f"({report.build_seconds:.2f} s)")
    console.print(f"recall@{report.k} vs exact over {report.n_queries} users: "
                  f"{report.recall:.4f}")


def register(app: typer.Typer) -> None:
    app.command("index")(index_command)
