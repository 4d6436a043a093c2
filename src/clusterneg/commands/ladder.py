"""``clusterneg ladder``: in-batch without logQ -> + logQ -> + uniform negatives -> +
same-cluster negatives (-> exact softmax), each rung's change with its paired interval;
writes a run directory holding ladder.json and ladder.md (see :mod:`clusterneg.ladder`).

Same contract as ``train`` and ``compare``: every option is checked and ``--out`` vetted
before any data is loaded; the directory is written atomically when the ladder is complete.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from clusterneg import defaults as D
from clusterneg.commands._common import (
    Split,
    Threads,
    UserId,
    check_compute_options,
    make_progress,
    show_epoch_lines,
)
from clusterneg.outputs import check_output


def ladder_command(
    dataset: str = typer.Option("ml-100k", help="Built-in name or data directory."),
    protocol: str = typer.Option("default", help="'default' or 'paper' (ID-only towers, "
                                                 "the paper's cluster:random ratio)."),
    seeds: int = typer.Option(1, help="Seeds per rung."),
    full: bool = typer.Option(False, "--full/--no-full",
                              help="Add the exact softmax as the last rung (the ceiling)."),
    encoder: str = typer.Option("minilm", help="Item text encoder (clusters come from it)."),
    n_clusters: str = typer.Option("auto", help="k-means clusters (>= 2), or 'auto'."),
    valid_users: int = typer.Option(0, help="Validate on this many users (0: all)."),
    split: Split = "auto",
    epochs: int = typer.Option(D.EPOCHS), batch_size: int = typer.Option(D.BATCH_SIZE),
    lr: float = typer.Option(D.LR), dim: int = typer.Option(D.DIM),
    temperature: float = typer.Option(D.TEMPERATURE),
    history_len: int = typer.Option(D.HISTORY_LEN),
    user_id: UserId = True,
    threads: Threads = 0,
    patience: int = typer.Option(D.PATIENCE),
    option: list[str] = typer.Option(None, "--option", "-o",
                                     help="SAMPLER:KEY=VALUE fixed sampler option."),
    out: Path = typer.Option(Path("runs/ladder"), help="Output run directory."),
    overwrite: bool = typer.Option(False, help="Replace an existing ladder at --out."),
) -> None:
    """Run the baseline ladder on one dataset and show where a gain comes from."""
    opts = dict(locals())
    check_compute_options(opts)
    if valid_users < 0:
        from clusterneg.errors import ConfigError

        raise ConfigError(f"--valid-users must be >= 0, got {valid_users}")
    check_output(out, overwrite=overwrite)
    from clusterneg.commands.compare import _sampler_options
    from clusterneg.experiment import ExperimentConfig
    from clusterneg.ladder import RUNGS
    from clusterneg.model import ModelConfig
    from clusterneg.presets import apply_protocol
    from clusterneg.train.config import TrainConfig
    from clusterneg.validate import parse_n_clusters

    exp, sampler_opts = apply_protocol(protocol, ExperimentConfig(
        dataset=dataset, split=split, encoder=encoder, n_clusters=parse_n_clusters(n_clusters),
        valid_users=valid_users), _sampler_options(option, [r.sampler for r in RUNGS] + ["full"]))
    model = ModelConfig(dim=dim, temperature=temperature, history_len=history_len,
                        user_id=user_id).validate()
    train = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
                        threads=threads).validate()
    _run(opts, exp, model, train, sampler_opts)


def _run(opts: dict[str, Any], exp: Any, model: Any, train: Any, sampler_opts: dict) -> None:
    from clusterneg.experiment import prepare
    from clusterneg.ladder import render_ladder, run_ladder
    from clusterneg.outputs import atomic_write_text, write_run_dir

    show_epoch_lines()
    with make_progress() as progress:
        prep = prepare(exp, progress=progress)
        result = run_ladder(prep, model, train, sampler_opts, seeds=opts["seeds"],
                            ceiling=opts["full"], progress=progress)
    title = (f"{prep.dataset.name} ({prep.dataset.n_items} items, batch {train.batch_size}, "
             f"protocol {opts['protocol']}, {prep.n_clusters} clusters, {opts['seeds']} seed(s))")
    text = render_ladder(result, title)
    doc = {"dataset": prep.dataset.name, "protocol": opts["protocol"],
           "experiment": exp.to_dict(), "model": model.to_dict(), "train": train.to_dict(),
           "sampler_options": sampler_opts, **result.to_dict()}

    def fill(tmp: Path) -> None:
        atomic_write_text(tmp / "ladder.json", json.dumps(doc, indent=1, default=float) + "\n")
        atomic_write_text(tmp / "ladder.md", text)

    write_run_dir(opts["out"], fill, kind="ladder", overwrite=opts["overwrite"])
    typer.echo(text)


def register(app: typer.Typer) -> None:
    app.command("ladder")(ladder_command)
