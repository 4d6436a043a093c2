"""``clusterneg compare``: the main job. Every sampler, same model, same data, same budget,
several seeds; writes results.json, results.md and report.html."""

from __future__ import annotations

from pathlib import Path

import typer

from clusterneg.commands._common import console, make_progress, parse_options
from clusterneg.compare import CompareConfig, compare
from clusterneg.errors import ConfigError
from clusterneg.experiment import ExperimentConfig, prepare
from clusterneg.model import ModelConfig
from clusterneg.samplers import SAMPLER_NAMES
from clusterneg.train.config import TrainConfig


def compare_command(
    dataset: str = typer.Option("ml-100k", help="Built-in name or data directory."),
    samplers: str = typer.Option("all", help="Comma-separated sampler names, or 'all'."),
    seeds: int = typer.Option(1, help="Seeds per sampler."),
    budget: int = typer.Option(1, help="Tuning trials per sampler on validation."),
    encoder: str = typer.Option("minilm", help="Item text encoder ('none': ids only)."),
    n_clusters: str = typer.Option("auto", help="k-means clusters, or 'auto'."),
    content: bool = typer.Option(True, help="Feed content embeddings to the item tower."),
    names: bool = typer.Option(True, help="SmolLM2 names the clusters for the report."),
    split: str = typer.Option("auto"),
    epochs: int = typer.Option(30), batch_size: int = typer.Option(256),
    lr: float = typer.Option(2e-3), dim: int = typer.Option(64),
    temperature: float = typer.Option(0.2), history_len: int = typer.Option(50),
    user_id: bool = typer.Option(True, help="User-id embedding in the user tower."),
    threads: int = typer.Option(0, help="torch threads (0: torch's default)."),
    patience: int = typer.Option(3), logq: bool = typer.Option(True),
    option: list[str] = typer.Option(None, "--option", "-o",
                                     help="SAMPLER:KEY=VALUE fixed sampler option."),
    out: Path = typer.Option(Path("runs/compare"), help="Output directory."),
    valid_users: int = typer.Option(0, help="Validate each epoch on a fixed seeded sample "
                                    "of this many users (0: all); test always uses all."),
) -> None:
    """Compare negative samplers on one dataset and write an honest report."""
    if valid_users < 0:
        raise ConfigError(f"--valid-users must be 0 (all) or a positive count, got {valid_users}")
    names = list(SAMPLER_NAMES) if samplers == "all" else [s.strip() for s in samplers.split(",")]
    exp = ExperimentConfig(dataset=dataset, split=split, encoder=encoder,
                           n_clusters=n_clusters if n_clusters == "auto" else int(n_clusters),
                           use_content=content, name_clusters=names,
                           valid_users=valid_users)
    cfg = CompareConfig(
        samplers=names, seeds=seeds, budget=budget,
        model=ModelConfig(dim=dim, temperature=temperature, history_len=history_len,
                          user_id=user_id),
        train=TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
                          logq=logq, threads=threads),
        sampler_options=_sampler_options(option),
    ).validate()
    from clusterneg.report import write_results
    from clusterneg.report.assemble import build_report_inputs

    with make_progress() as progress:
        prep = prepare(exp, progress=progress)
        results, raw = compare(prep, cfg, progress=progress)
    paths = write_results(out, results, build_report_inputs(prep, raw))
    typer.echo(Path(paths["markdown"]).read_text(encoding="utf-8"))
    console.print(f"report: {paths['html']}")


def _sampler_options(pairs: list[str] | None) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for pair in pairs or []:
        if ":" not in pair.split("=", 1)[0]:
            raise ConfigError(f"option '{pair}': expected SAMPLER:KEY=VALUE")
        sampler, rest = pair.split(":", 1)
        out.setdefault(sampler, {}).update(parse_options([rest]))
    return out


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_command)
