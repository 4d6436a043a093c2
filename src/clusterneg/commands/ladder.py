"""``clusterneg ladder``: in-batch without logQ -> + logQ -> + uniform negatives -> +
same-cluster negatives (-> exact softmax), each rung's change with its paired interval;
writes ladder.json and ladder.md (see :mod:`clusterneg.ladder`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from clusterneg.commands._common import make_progress
from clusterneg.commands.compare import _sampler_options
from clusterneg.experiment import ExperimentConfig, prepare
from clusterneg.ladder import render_ladder, run_ladder
from clusterneg.model import ModelConfig
from clusterneg.presets import apply_protocol
from clusterneg.report.html import write_text_atomic
from clusterneg.train.config import TrainConfig


def ladder_command(
    dataset: str = typer.Option("ml-100k", help="Built-in name or data directory."),
    protocol: str = typer.Option("default", help="'default' or 'paper' (ID-only towers, "
                                                 "the paper's cluster:random ratio)."),
    seeds: int = typer.Option(1, help="Seeds per rung."),
    full: bool = typer.Option(False, "--full/--no-full",
                              help="Add the exact softmax as the last rung (the ceiling)."),
    encoder: str = typer.Option("minilm", help="Item text encoder (clusters come from it)."),
    n_clusters: str = typer.Option("auto", help="k-means clusters, or 'auto'."),
    valid_users: int = typer.Option(0, help="Validate on this many users (0: all)."),
    split: str = typer.Option("auto"),
    epochs: int = typer.Option(30), batch_size: int = typer.Option(256),
    lr: float = typer.Option(2e-3), dim: int = typer.Option(64),
    temperature: float = typer.Option(0.2), history_len: int = typer.Option(50),
    threads: int = typer.Option(0, help="torch threads (0: torch's default)."),
    patience: int = typer.Option(3),
    option: list[str] = typer.Option(None, "--option", "-o",
                                     help="SAMPLER:KEY=VALUE fixed sampler option."),
    out: Path = typer.Option(Path("runs/ladder"), help="Output directory."),
) -> None:
    """Run the baseline ladder on one dataset and show where a gain comes from."""
    nc = n_clusters if n_clusters == "auto" else int(n_clusters)
    exp, opts = apply_protocol(protocol, ExperimentConfig(
        dataset=dataset, split=split, encoder=encoder, n_clusters=nc,
        valid_users=valid_users), _sampler_options(option))
    model = ModelConfig(dim=dim, temperature=temperature, history_len=history_len)
    train = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
                        threads=threads).validate()
    with make_progress() as progress:
        prep = prepare(exp, progress=progress)
        result = run_ladder(prep, model, train, opts, seeds=seeds, ceiling=full,
                            progress=progress)
    title = f"{prep.dataset.name} ({prep.dataset.n_items} items, batch {batch_size}, " \
            f"protocol {protocol}, {prep.n_clusters} clusters, {seeds} seed(s))"
    text = render_ladder(result, title)
    doc = {"dataset": prep.dataset.name, "protocol": protocol, "experiment": exp.to_dict(),
           "model": model.to_dict(), "train": train.to_dict(), "sampler_options": opts,
           **result.to_dict()}
    write_text_atomic(out / "ladder.json", json.dumps(doc, indent=1, default=float) + "\n")
    write_text_atomic(out / "ladder.md", text)
    typer.echo(text)


def register(app: typer.Typer) -> None:
    app.command("ladder")(ladder_command)
