"""``clusterneg train-stream DATA``: train from Parquet shards too large for memory.

Batches come from a bounded shuffle buffer over the shards' row groups, item frequencies for
logQ are estimated online, and the item clusters of the cluster samplers come from a
``item_id, cluster`` table (a ``data synth`` directory's own ``latent_items.parquet`` by
default). Every option and input is checked before the towers are built; the run directory
is written only when training is complete (:mod:`clusterneg.outputs`), and with
``--checkpoint-every`` an interrupted run continues with ``--resume``.
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
    StateDir,
    Threads,
    UserId,
    check_compute_options,
    make_progress,
    parse_options,
    parse_sampler_name,
    say,
)
from clusterneg.config_file import COMMAND_FILE, dump_command
from clusterneg.outputs import check_output


def train_stream_command(
    data: Path = typer.Argument(..., help="Folder of Parquet shards (integer user_id, "
                                "item_id from 0) or a 'clusterneg data synth' directory."),
    out: Path = typer.Option(..., help="Run directory (created; an existing run is replaced "
                             "only with --overwrite)."),
    sampler: str = typer.Option("cluster-goobs", help="Sampler name (list: 'clusterneg "
                                "samplers')."),
    option: list[str] = typer.Option(None, "--option", "-o", help="Sampler option KEY=VALUE."),
    clusters: Path = typer.Option(None, help="Table of item_id, cluster (Parquet or CSV); "
                                  "default: DATA/latent_items.parquet when present."),
    epochs: int = typer.Option(1), max_steps: int = typer.Option(None),
    batch_size: int = typer.Option(D.BATCH_SIZE),
    buffer_rows: int = typer.Option(1_000_000, help="Shuffle buffer rows (memory bound)."),
    freq_alpha: float = typer.Option(0.01, help="Moving-average rate of the online item "
                                     "frequency estimate (logQ)."),
    lr: float = typer.Option(D.LR), weight_decay: float = typer.Option(0.0),
    optimizer: Optimizer = "adam",
    dim: int = typer.Option(D.DIM), temperature: float = typer.Option(D.TEMPERATURE),
    user_id: UserId = True,
    logq: bool = typer.Option(True), seed: int = typer.Option(0),
    threads: Threads = 0,
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:N or mps."),
    overwrite: bool = typer.Option(False, help="Replace an existing run at --out."),
    checkpoint_every: CheckpointEvery = 0,
    resume: Resume = False,
    state_dir: StateDir = None,
) -> None:
    """Train on a stream of Parquet shards (bounded memory, online logQ, resumable)."""
    opts = dict(locals())
    src, model_cfg, train_cfg = build_configs(opts)
    check_output(out, overwrite=overwrite, resume=resume)
    from clusterneg.train.state import Checkpointing, state_dir_for
    from clusterneg.train.stream_run import run_config, save_stream_run, stream_run

    config = run_config(src, model_cfg, train_cfg)
    ckpt = Checkpointing(state_dir_for(out, state_dir), checkpoint_every,
                         resume, config)
    if resume:
        ckpt.check()  # fail before the stream is opened
    with make_progress() as progress:
        res, info = stream_run(src, model_cfg, train_cfg, ckpt, progress)
    save_stream_run(out, res, info, config, overwrite=overwrite or resume,
                    extra_files={COMMAND_FILE: dump_command(opts)})
    last = res.epochs[-1]["loss"] if res.epochs else float("nan")
    say(f"{res.steps} steps, {res.examples} examples ({res.examples_per_s:.0f}/s), "
        f"last epoch loss {last:.4f}; run saved to {out}")


def build_configs(opts: dict[str, Any]) -> tuple[Any, Any, Any]:
    """Check every option (cheap checks first) and build the stream, model and train
    configs."""
    from clusterneg.validate import at_least, positive

    check_compute_options(opts)
    at_least("--buffer-rows", opts["buffer_rows"], opts["batch_size"])
    positive("--freq-alpha", opts["freq_alpha"])
    if opts["freq_alpha"] > 1:
        from clusterneg.errors import ConfigError

        raise ConfigError(f"--freq-alpha must be in (0, 1], got {opts['freq_alpha']}")
    from clusterneg.model import ModelConfig
    from clusterneg.train.config import TrainConfig
    from clusterneg.train.device import check_device
    from clusterneg.train.stream_run import StreamSource

    src = StreamSource(data=str(Path(opts["data"]).resolve()),
                       clusters=None if opts["clusters"] is None
                       else str(Path(opts["clusters"]).resolve()),
                       buffer_rows=opts["buffer_rows"], freq_alpha=opts["freq_alpha"])
    model_cfg = ModelConfig(dim=opts["dim"], temperature=opts["temperature"], history_len=0,
                            user_id=opts["user_id"], content=False).validate()
    train_cfg = TrainConfig(
        sampler=parse_sampler_name(opts["sampler"]),
        sampler_options=parse_options(opts["option"]), epochs=opts["epochs"],
        max_steps=opts["max_steps"], batch_size=opts["batch_size"], lr=opts["lr"],
        weight_decay=opts["weight_decay"], optimizer=opts["optimizer"],
        logq_correction=opts["logq"], seed=opts["seed"],
        threads=opts["threads"], device=check_device(opts["device"])).validate()
    return src, model_cfg, train_cfg


def register(app: typer.Typer) -> None:
    app.command("train-stream")(train_stream_command)
