"""``clusterneg items add RUN FILE``: add new items (JSONL / CSV / Parquet, with text) to a
trained run: encoded, assigned to the nearest cluster, logged durably and indexed, with no
retraining."""

from __future__ import annotations

from pathlib import Path

import typer

from clusterneg import defaults as D
from clusterneg.commands._common import console

items_app = typer.Typer(help="Items added to a run after training.", no_args_is_help=True)


@items_app.command("add")
def add_command(
    run_dir: Path = typer.Argument(..., help="A run directory written by train/compare."),
    file: Path = typer.Argument(..., help="New items: .jsonl, .csv or .parquet with item_id "
                                "and text (or the catalog's text fields, or a vector)."),
) -> None:
    """Encode new items with the run's encoder and add them to its pool state and index."""
    from clusterneg.serve.new_items import read_new_items
    from clusterneg.serve.retriever import Retriever

    items = read_new_items(file)
    retriever = Retriever.open(run_dir)
    added = []
    for start in range(0, len(items), D.SERVE_MAX_ADD):
        added += retriever.add_items(items[start:start + D.SERVE_MAX_ADD])
    per_cluster: dict[str, int] = {}
    for a in added:
        label = a.cluster_name or str(a.cluster)
        per_cluster[label] = per_cluster.get(label, 0) + 1
    console.print(f"added {len(added)} items to {run_dir} "
                  f"(now {retriever.n_items} items, {retriever.n_added} added since training)")
    top = sorted(per_cluster.items(), key=lambda kv: -kv[1])[:10]
    console.print("clusters: " + ", ".join(f"{c} ({n})" for c, n in top))


def register(app: typer.Typer) -> None:
    app.add_typer(items_app, name="items")
