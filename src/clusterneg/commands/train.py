"""``clusterneg train``: train one two-tower model with one negative sampler.

Every option is checked and the output location is vetted before any data is loaded; the run
directory is written only when training is complete (:mod:`clusterneg.outputs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from clusterneg import defaults as D
from clusterneg.commands._common import (
    CheckpointEvery,
    Optimizer,
    Resume,
    Split,
    StateDir,
    Threads,
    UserId,
    check_compute_options,
    console,
    make_progress,
    parse_options,
    parse_sampler_name,
    say,
    show_epoch_lines,
)
from clusterneg.config_file import COMMAND_FILE, dump_command, merge
from clusterneg.outputs import check_output


def train_command(
    ctx: typer.Context,
    dataset: str = typer.Option("ml-100k", help="Built-in name or data directory."),
    sampler: str = typer.Option("in-batch", help="Sampler name (list: 'clusterneg samplers')."),
    option: list[str] = typer.Option(None, "--option", "-o", help="Sampler option KEY=VALUE."),
    encoder: str = typer.Option("minilm", help="Item text encoder, or 'none' for ids only."),
    n_clusters: str = typer.Option("auto", help="k-means clusters (>= 2), or 'auto'."),
    concepts: int = typer.Option(0, help="Split each cluster into up to N LLM-named "
                                 "concepts (0: plain k-means)."),
    content: bool = typer.Option(True, help="Feed content embeddings to the item tower."),
    split: Split = "auto",
    split_seed: int = typer.Option(0, help="Seed of the split."),
    epochs: int = typer.Option(D.EPOCHS), batch_size: int = typer.Option(D.BATCH_SIZE),
    lr: float = typer.Option(D.LR), weight_decay: float = typer.Option(0.0),
    optimizer: Optimizer = "adam",
    dim: int = typer.Option(D.DIM), temperature: float = typer.Option(D.TEMPERATURE),
    user_id: UserId = True,
    history_len: int = typer.Option(D.HISTORY_LEN), logq: bool = typer.Option(True),
    patience: int = typer.Option(D.PATIENCE), max_steps: int = typer.Option(None),
    seed: int = typer.Option(0),
    threads: Threads = 0,
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:N or mps."),
    out: Path = typer.Option(Path("runs/train"), help="Run directory (created; an existing "
                             "run is replaced only with --overwrite)."),
    overwrite: bool = typer.Option(False, help="Replace an existing run at --out."),
    checkpoint_every: CheckpointEvery = 0,
    resume: Resume = False,
    state_dir: StateDir = None,
    config: Path = typer.Option(None, help="YAML file of these options; the command line "
                                "overrides it (a run's command.yaml replays the run)."),
) -> None:
    """Train on the train split, early-stop on validation, report the test metrics."""
    opts = merge(ctx, config, {k: v for k, v in locals().items() if k not in ("ctx", "config")})
    exp, model_cfg, train_cfg = build_configs(opts)
    check_output(opts["out"], overwrite=opts["overwrite"], resume=opts["resume"])
    from clusterneg.train.state import Checkpointing, state_dir_for

    out = opts["out"]
    ckpt = Checkpointing(state_dir_for(out, opts["state_dir"]),
                         opts["checkpoint_every"], opts["resume"],
                         {"experiment": exp.to_dict(), "model": model_cfg.to_dict(),
                          "train": train_cfg.to_dict()})
    if opts["resume"]:
        ckpt.check()  # fail before the data is prepared
    _train(opts, exp, model_cfg, train_cfg, ckpt)


def build_configs(opts: dict[str, Any]) -> tuple[Any, Any, Any]:
    """Check every option (the one place they are checked: cheap checks first, no torch
    import before them) and build the three configs."""
    check_compute_options(opts)
    from clusterneg.experiment import ExperimentConfig
    from clusterneg.model import ModelConfig
    from clusterneg.train.config import TrainConfig
    from clusterneg.train.device import check_device
    from clusterneg.validate import parse_n_clusters

    exp = ExperimentConfig(dataset=opts["dataset"], split=opts["split"],
                           split_seed=opts["split_seed"], encoder=opts["encoder"],
                           n_clusters=parse_n_clusters(opts["n_clusters"]),
                           use_content=opts["content"],
                           concepts=opts["concepts"])
    model_cfg = ModelConfig(dim=opts["dim"], temperature=opts["temperature"],
                            history_len=opts["history_len"], user_id=opts["user_id"]).validate()
    train_cfg = TrainConfig(
        sampler=parse_sampler_name(opts["sampler"]), sampler_options=parse_options(
            opts["option"]), epochs=opts["epochs"], batch_size=opts["batch_size"],
        lr=opts["lr"], weight_decay=opts["weight_decay"], optimizer=opts["optimizer"],
        logq_correction=opts["logq"],
        patience=opts["patience"], max_steps=opts["max_steps"], seed=opts["seed"],
        threads=opts["threads"], device=check_device(opts["device"])).validate()
    return exp, model_cfg, train_cfg


def _train(opts: dict[str, Any], exp: Any, model_cfg: Any, train_cfg: Any, ckpt: Any) -> None:
    from clusterneg.experiment import prepare, run
    from clusterneg.provenance import run_provenance
    from clusterneg.train.checkpoint import save_run

    show_epoch_lines()
    with make_progress() as progress:
        prep = prepare(exp, progress=progress)
        res = run(prep, model_cfg, train_cfg, progress=progress, keep_model=True,
                  checkpoint=ckpt)
    prov = run_provenance(prep, train_cfg.threads, train_cfg.device)
    save_run(opts["out"], res, res.model, prov, overwrite=opts["overwrite"] or opts["resume"],
             extra_files={COMMAND_FILE: dump_command(opts)})
    from clusterneg.commands._common import metrics_table

    console.print(metrics_table(f"{exp.dataset} / {train_cfg.sampler} (test)", res.metrics,
                                res.exposure))
    say(f"best epoch {res.train['best_epoch'] + 1}, {res.train['examples_per_s']:.0f} "
        f"examples/s, run saved to {opts['out']}")


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
