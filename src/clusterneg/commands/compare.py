"""``clusterneg compare``: the main job. Every sampler, same model, same data, same budget,
several seeds; one run directory per sampler and seed under ``--out`` (saved as each
finishes, so ``--resume`` continues an interrupted comparison), then results.json,
results.md and report.html."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from clusterneg import defaults as D
from clusterneg.commands._common import (
    Optimizer,
    Split,
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
from clusterneg.config_file import dump_command, merge
from clusterneg.errors import ConfigError
from clusterneg.outputs import check_output


def compare_command(
    ctx: typer.Context,
    dataset: str = typer.Option("ml-100k", help="Built-in name or data directory."),
    protocol: str = typer.Option("default", help="'default' or 'paper' (ID-only towers, "
                                                 "the paper's cluster:random ratio)."),
    samplers: str = typer.Option(
        "all", help="Comma-separated sampler names, or 'all'. NAME@LABEL runs a sampler once "
        "more under its own options (-o NAME@LABEL:KEY=VALUE), e.g. goobs,goobs@cached."),
    seeds: int = typer.Option(1, help="Seeds per sampler."),
    budget: int = typer.Option(1, help="Tuning trials per sampler on validation."),
    encoder: str = typer.Option("minilm", help="Item text encoder ('none': ids only)."),
    n_clusters: str = typer.Option("auto", help="k-means clusters (>= 2), or 'auto'."),
    concepts: int = typer.Option(0, help="Split each cluster into up to N LLM-named "
                                 "concepts (0: plain k-means)."),
    content: bool = typer.Option(True, help="Feed content embeddings to the item tower."),
    names: bool = typer.Option(True, help="SmolLM2 names the clusters for the report."),
    split: Split = "auto",
    epochs: int = typer.Option(D.EPOCHS), batch_size: int = typer.Option(D.BATCH_SIZE),
    lr: float = typer.Option(D.LR), dim: int = typer.Option(D.DIM),
    optimizer: Optimizer = "adam",
    temperature: float = typer.Option(D.TEMPERATURE),
    history_len: int = typer.Option(D.HISTORY_LEN),
    user_id: UserId = True,
    threads: Threads = 0,
    jobs: int = typer.Option(1, help="Runs trained at once, each in its own process (with "
                             "--threads 1, up to the number of cores). The results do not "
                             "depend on it."),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:N or mps."),
    patience: int = typer.Option(D.PATIENCE), logq: bool = typer.Option(True),
    option: list[str] = typer.Option(None, "--option", "-o",
                                     help="SAMPLER:KEY=VALUE fixed sampler option (SAMPLER as in "
                                          "--samplers, label included)."),
    out: Path = typer.Option(Path("runs/compare"), help="Output directory."),
    valid_users: int = typer.Option(0, help="Validate each epoch on a fixed seeded sample "
                                    "of this many users (0: all); test always uses all."),
    resume: bool = typer.Option(False, help="Continue an interrupted comparison at --out "
                                "(finished runs are loaded, not redone); with more --seeds "
                                "or other --samplers it extends a finished one."),
    overwrite: bool = typer.Option(False, help="Replace a finished comparison at --out."),
    config: Path = typer.Option(None, help="YAML file of these options; the command line "
                                "overrides it (OUT/command.yaml replays a comparison)."),
) -> None:
    """Compare negative samplers on one dataset and write an honest report."""
    opts = merge(ctx, config, {k: v for k, v in locals().items() if k not in ("ctx", "config")})
    exp, cfg = build_compare(opts)
    check_output(opts["out"], overwrite=opts["overwrite"], resume=opts["resume"])
    from clusterneg.compare import CompareConfig
    from clusterneg.compare_store import RunStore
    from clusterneg.experiment import ExperimentConfig

    store = RunStore(opts["out"], {"experiment": exp.to_dict(), "compare": _settings(cfg)},
                     resume=opts["resume"], overwrite=opts["overwrite"],
                     defaults={"experiment": ExperimentConfig(dataset=exp.dataset).to_dict(),
                               "compare": _settings(CompareConfig())})
    _compare(opts, exp, cfg, store)


def build_compare(opts: dict[str, Any]) -> tuple[Any, Any]:
    """Check every option before any work (the one place they are checked: cheap checks
    first, no torch import before them) and build (ExperimentConfig, CompareConfig)."""
    check_compute_options(opts)
    if opts["resume"] and opts["overwrite"]:
        raise ConfigError("--resume and --overwrite exclude each other")
    if opts.get("jobs", 1) < 1:
        raise ConfigError(f"--jobs must be at least 1, got {opts['jobs']}")
    from clusterneg.compare import CompareConfig
    from clusterneg.experiment import ExperimentConfig
    from clusterneg.model import ModelConfig
    from clusterneg.samplers import SAMPLER_NAMES
    from clusterneg.train.config import TrainConfig
    from clusterneg.validate import parse_n_clusters

    chosen = (list(SAMPLER_NAMES) if opts["samplers"] == "all"
              else [parse_sampler_name(s, labels=True) for s in opts["samplers"].split(",")
                    if s.strip()])
    if not chosen:
        raise ConfigError("--samplers: expected at least one sampler name")
    if opts["valid_users"] < 0:
        raise ConfigError(f"--valid-users must be 0 (all) or a positive count, "
                          f"got {opts['valid_users']}")
    exp = ExperimentConfig(dataset=opts["dataset"], split=opts["split"],
                           encoder=opts["encoder"],
                           n_clusters=parse_n_clusters(opts["n_clusters"]),
                           use_content=opts["content"], name_clusters=opts["names"],
                           valid_users=opts["valid_users"],
                           concepts=opts["concepts"])
    cfg = CompareConfig(
        samplers=chosen, seeds=opts["seeds"], budget=opts["budget"],
        model=ModelConfig(dim=opts["dim"], temperature=opts["temperature"],
                          history_len=opts["history_len"], user_id=opts["user_id"]).validate(),
        train=TrainConfig(epochs=opts["epochs"], batch_size=opts["batch_size"], lr=opts["lr"],
                          optimizer=opts["optimizer"],
                          patience=opts["patience"], logq_correction=opts["logq"],
                          threads=opts["threads"], device=opts["device"]).validate(),
        sampler_options=_sampler_options(opts["option"], chosen),
    ).validate()
    from clusterneg.presets import apply_protocol

    exp, cfg.sampler_options = apply_protocol(opts["protocol"], exp, cfg.sampler_options)
    from clusterneg.samplers import sampler_of

    for sampler, fixed in cfg.sampler_options.items():
        TrainConfig(sampler=sampler_of(sampler), sampler_options=fixed).validate()
    return exp, cfg


def _settings(cfg: Any) -> dict[str, Any]:
    return {"samplers": cfg.samplers, "seeds": cfg.seeds, "budget": cfg.budget,
            "model": cfg.model.to_dict(), "train": cfg.train.to_dict(),
            "sampler_options": cfg.sampler_options}


def _compare(opts: dict[str, Any], exp: Any, cfg: Any, store: Any) -> None:
    from clusterneg.compare import compare
    from clusterneg.experiment import prepare
    from clusterneg.provenance import run_provenance
    from clusterneg.report import write_results
    from clusterneg.report.inputs import build_report_inputs

    show_epoch_lines()
    with make_progress() as progress:
        prep = prepare(exp, progress=progress)
        store.start(dump_command(opts))  # only once the data loaded: a bad dataset leaves nothing
        prov = run_provenance(prep, cfg.train.threads, cfg.train.device)
        results, raw = compare(prep, cfg, progress=progress, store=store, provenance=prov,
                               jobs=opts["jobs"])
    results["provenance"] = prov
    paths = write_results(opts["out"], results, build_report_inputs(prep, raw))
    store.finish()
    typer.echo(Path(paths["markdown"]).read_text(encoding="utf-8"))
    console.print(f"report: {paths['html']}")
    say(f"run directories: {store.root / 'runs'}")


def _sampler_options(pairs: list[str] | None, chosen: list[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for pair in pairs or []:
        if ":" not in pair.split("=", 1)[0]:
            raise ConfigError(f"option '{pair}': expected SAMPLER:KEY=VALUE")
        sampler, rest = pair.split(":", 1)
        sampler = parse_sampler_name(sampler, labels=True)
        if sampler not in chosen:
            raise ConfigError(f"option '{pair}': sampler {sampler!r} is not in --samplers")
        out.setdefault(sampler, {}).update(parse_options([rest]))
    return out


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_command)
