"""``clusterneg data synth``: write a synthetic dataset with latent clusters, at any size."""

from __future__ import annotations

from pathlib import Path

import typer

from clusterneg.commands._common import console, make_progress


def synth_command(
    items: int = typer.Option(10_000, help="Catalog size."),
    interactions: int = typer.Option(100_000, help="Interactions to generate."),
    out: Path = typer.Option(..., help="New output directory."),
    users: int = typer.Option(None, help="Users (default: interactions / 20)."),
    clusters: int = typer.Option(None, help="Latent clusters (default: sqrt(items) / 4)."),
    zipf_alpha: float = typer.Option(1.0, help="Popularity exponent."),
    shard_rows: int = typer.Option(1_000_000, help="Rows per Parquet shard."),
    seed: int = typer.Option(0, help="Seed (same seed, same files)."),
    facets: int = typer.Option(1, help="Sub-topics per cluster (1: none)."),
    focus: float = typer.Option(
        0.0, help="Share of a user's in-taste interactions kept inside their favourite facet "
                  "of the cluster (needs --facets >= 2)."),
) -> None:
    """Parquet shards + items table: Zipf popularity, clustered item text, user tastes."""
    from clusterneg.data.synth import SynthConfig, check_new_dir, synthesize

    cfg = SynthConfig(n_items=items, n_interactions=interactions, n_users=users,
                      n_clusters=clusters, zipf_alpha=zipf_alpha, shard_rows=shard_rows,
                      seed=seed, facets=facets, focus=focus).resolved()
    check_new_dir(out)  # one clear line before any progress output
    with make_progress() as progress:
        path = synthesize(cfg, out, progress=progress)
    console.print(f"wrote {interactions} interactions over {items} items to {path}")


def register(app: typer.Typer) -> None:
    """Attach ``clusterneg data synth`` to the ``data`` command group."""
    from clusterneg.commands.data import data_app

    data_app.command("synth")(synth_command)
