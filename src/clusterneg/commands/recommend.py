"""``clusterneg recommend RUN --user ID -k 20``: a user's top items (title, score, cluster),
their seen items excluded."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from clusterneg import defaults as D
from clusterneg.commands._common import console
from clusterneg.errors import ConfigError


def recommend_command(
    run_dir: Path = typer.Argument(..., help="A run directory written by train/compare."),
    user: str = typer.Option(None, help="A user id of the run's dataset."),
    items: str = typer.Option(None, help="Comma-separated recent item ids (instead of a user)."),
    k: int = typer.Option(20, "-k", "--k", help=f"How many items (1..{D.SERVE_MAX_K})."),
    exclude: str = typer.Option("", help="Comma-separated item ids never to return."),
) -> None:
    """Recommend items to a user (or for a list of recent items) from the run's index."""
    if not 1 <= k <= D.SERVE_MAX_K:
        raise ConfigError(f"-k must be between 1 and {D.SERVE_MAX_K}, got {k}")
    from clusterneg.serve.retriever import Retriever

    recent = _ids(items) if items is not None else None
    retriever = Retriever.open(run_dir)
    recs = retriever.recommend(user=user, items=recent, k=k, exclude=_ids(exclude))
    table = Table(title=f"top {k} for " + (f"user {user}" if user is not None else
                                            f"items {items}"))
    for col in ("#", "item_id", "title", "score", "cluster"):
        table.add_column(col, justify="right" if col in ("#", "score") else "left")
    for rank, r in enumerate(recs, start=1):
        cluster = "" if r.cluster is None else (r.cluster_name or str(r.cluster))
        table.add_row(str(rank), r.item_id, r.title, f"{r.score:.4f}", cluster)
    console.print(table)


def _ids(text: str | None) -> list[str]:
    return [s.strip() for s in (text or "").split(",") if s.strip()]


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend_command)
