"""``clusterneg train``: train one two-tower model with one negative sampler."""

from __future__ import annotations

from pathlib import Path

import typer

from clusterneg.commands._common import console, make_progress, metrics_table, parse_options
from clusterneg.experiment import ExperimentConfig, prepare, run
from clusterneg.model import ModelConfig
from clusterneg.samplers import SAMPLER_NAMES
from clusterneg.train.config import TrainConfig
from clusterneg.train.device import check_device
from clusterneg.train.state import Checkpointing


def train_command(
    dataset: str = typer.Option("ml-100k", help="Built-in name or data directory."),
    sampler: str = typer.Option("in-batch", help=", ".join(SAMPLER_NAMES) + "."),
    option: list[str] = typer.Option(None, "--option", "-o", help="Sampler option KEY=VALUE."),
    encoder: str = typer.Option("minilm", help="Item text encoder, or 'none' for ids only."),
    n_clusters: str = typer.Option("auto", help="k-means clusters, or 'auto'."),
    content: bool = typer.Option(True, help="Feed content embeddings to the item tower."),
    split: str = typer.Option("auto", help="auto, leave-last-out, random, temporal."),
    split_seed: int = typer.Option(0, help="Seed of the split."),
    epochs: int = typer.Option(40), batch_size: int = typer.Option(256),
    lr: float = typer.Option(2e-3), weight_decay: float = typer.Option(0.0),
    dim: int = typer.Option(64), temperature: float = typer.Option(0.2),
    user_id: bool = typer.Option(True, help="User-id embedding in the user tower."),
    history_len: int = typer.Option(50), logq: bool = typer.Option(True),
    patience: int = typer.Option(4), max_steps: int = typer.Option(None),
    seed: int = typer.Option(0), out: Path = typer.Option(Path("runs/train"), help="Run dir."),
    checkpoint_every: int = typer.Option(0, help="Write resumable state every N steps "
                                         "(0: never)."),
    resume: bool = typer.Option(False, help="Continue from the newest resumable state."),
    state_dir: Path = typer.Option(None, help="Resumable state directory (default: "
                                   "OUT.state beside the run directory)."),
    device: str = typer.Option("cpu", help="Torch device: cpu, cuda, cuda:N."),
) -> None:
    """Train on the train split, early-stop on validation, report the test metrics."""
    exp = ExperimentConfig(dataset=dataset, split=split, split_seed=split_seed,
                           encoder=encoder, n_clusters=_clusters(n_clusters),
                           use_content=content)
    model_cfg = ModelConfig(dim=dim, temperature=temperature, history_len=history_len,
                            user_id=user_id)
    train_cfg = TrainConfig(sampler=sampler, sampler_options=parse_options(option),
                            epochs=epochs, batch_size=batch_size, lr=lr,
                            weight_decay=weight_decay, logq_correction=logq, patience=patience,
                            max_steps=max_steps, seed=seed, device=check_device(device))
    model_cfg.validate()
    train_cfg.validate()
    ckpt = Checkpointing(state_dir or out.with_name(f"{out.name}.state"), checkpoint_every,
                         resume, {"experiment": exp.to_dict(), "model": model_cfg.to_dict(),
                                  "train": train_cfg.to_dict()})
    if resume:
        ckpt.check()  # fail before the data is prepared
    with make_progress() as progress:
        prep = prepare(exp, progress=progress)
        res = run(prep, model_cfg, train_cfg, out_dir=out, progress=progress, checkpoint=ckpt)
    console.print(metrics_table(f"{dataset} / {sampler} (test)", res.metrics, res.exposure))
    console.print(f"best epoch {res.train['best_epoch']}, "
                  f"{res.train['examples_per_s']:.0f} examples/s, run saved to {out}")


def _clusters(value: str) -> int | str:
    return value if value == "auto" else int(value)


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
