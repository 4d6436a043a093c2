"""``clusterneg cluster`` (fit clusters, print diagnostics) and ``clusterneg clusters show``
(a table of named clusters)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from clusterneg.commands._common import Threads, console
from clusterneg.commands.embed import ENCODER_HELP, encoder_options, make_progress, set_threads
from clusterneg.errors import ConfigError
from clusterneg.outputs import check_output, write_run_dir
from clusterneg.validate import at_least, parse_concepts, parse_n_clusters

clusters_app = typer.Typer(help="Inspect item clusters.", no_args_is_help=True)


def run_clustering(dataset: str, encoder: str, n_clusters: str, seed: int,
                   cache_dir: Path | None, opts: dict[str, Any], min_cluster_size: int,
                   postprocess: str | None, name: bool, concepts: int = 0) -> Any:
    """Load the data and call :func:`embed_and_cluster` with a progress bar (then, with
    ``concepts``, split each cluster into LLM-named concepts)."""
    from clusterneg.cluster import embed_and_cluster
    from clusterneg.data.load import load_dataset

    ds = load_dataset(dataset)
    with make_progress() as progress:
        emb, result = embed_and_cluster(
            ds, encoder, parse_n_clusters(n_clusters), seed=seed, cache_dir=cache_dir,
            postprocess=postprocess, min_cluster_size=min_cluster_size, name=name,
            encoder_opts=opts, progress=progress)
        if concepts:
            from clusterneg.cluster.concepts import ConceptOptions, concept_clusters
            from clusterneg.cluster.pipeline import training_matrix

            result = concept_clusters(
                ds, emb, result, encoder_spec=encoder, cache_dir=cache_dir,
                options=ConceptOptions(concepts, min_concept_size=min_cluster_size, seed=seed),
                user_items=training_matrix(ds, None, seed), encoder_opts=opts,
                progress=progress)
    result.meta["dataset_spec"] = dataset
    result.meta["encoder_spec"] = encoder
    return result


def cluster_command(
    dataset: str = typer.Option("ml-100k", help="Built-in name (ml-100k) or data directory."),
    encoder: str = typer.Option("minilm", help=ENCODER_HELP),
    n_clusters: str = typer.Option("auto", help="Number of clusters, or 'auto'."),
    out: Annotated[Path | None, typer.Option(
        help="Save centroids, assignments, diagnostics to DIR.")] = None,
    seed: int = typer.Option(0, help="k-means seed (and split seed for the diagnostics)."),
    min_cluster_size: int = typer.Option(5, help="Merge clusters smaller than this."),
    postprocess: str = typer.Option(
        None, help="none | center | whiten | whiten:DIM (default: per encoder)."),
    names: bool = typer.Option(False, "--names/--no-names", help="Name clusters with SmolLM2."),
    concepts: int = typer.Option(0, help="Split each cluster into up to N concepts that "
                                 "SmolLM2 names from the item titles (0: plain k-means)."),
    batch_size: int = typer.Option(None, help="Encoder texts per forward pass."),
    pooling: str = typer.Option(None, help="Causal LMs: mean | last."),
    dtype: str = typer.Option(None, help="float32 | bfloat16."),
    cache_dir: Annotated[Path | None, typer.Option(help="Cache root.")] = None,
    as_json: bool = typer.Option(False, "--json", help="Print the diagnostics as JSON."),
    overwrite: bool = typer.Option(False, help="Replace an existing cluster folder at --out."),
    threads: Threads = 0,
    device: str = typer.Option("cpu", help="Encoder device: cpu, cuda, cuda:N or mps."),
) -> None:
    """Cluster the items' content embeddings and print how good the negatives will be."""
    parse_n_clusters(n_clusters)
    parse_concepts(concepts, encoder)
    opts = encoder_options(batch_size, pooling, dtype, None, device)
    at_least("--min-cluster-size", min_cluster_size, 1)
    if out is not None:
        check_output(out, overwrite=overwrite)
    set_threads(threads)
    result = run_clustering(dataset, encoder, n_clusters, seed, cache_dir, opts,
                            min_cluster_size, postprocess, names, concepts)
    if out is not None:
        write_run_dir(out, result.save, kind="cluster", overwrite=overwrite)
    if as_json:
        diag = dict(result.diagnostics)
        diag["sizes"] = {k: v for k, v in diag["sizes"].items() if k != "sizes"}
        typer.echo(json.dumps({"diagnostics": diag, "auto": result.meta.get("auto")}, indent=1))
        return
    if "auto" in result.meta:
        console.print(auto_table(result.meta["auto"]))
    console.print(diagnostics_table(result.diagnostics, result.meta))


def auto_table(auto: dict[str, Any]) -> Table:
    """The candidates the auto rule scanned, the chosen one marked."""
    rule = auto["rule"]
    table = Table(title=auto.get("reason") or (
        f"n_clusters=auto: hardest k with FN lift <= {rule['max_fn_lift']} "
        f"and median size >= {rule['min_median_size']}"))
    for col in ("k", "after merge", "median size", "FN lift", "content hardness", "ok"):
        table.add_column(col, justify="right")
    for row in auto["table"]:
        mark = "<- chosen" if row["k"] == auto["chosen"] else ("yes" if row["admissible"]
                                                                 else "no")
        table.add_row(str(row["k"]), str(row["k_final"]), f"{row['median_size']:g}",
                      _f(row["fn_lift"]), _f(row["content_hardness"]), mark)
    return table


def diagnostics_table(diag: dict[str, Any], meta: dict[str, Any]) -> Table:
    """Sizes, false negatives, category agreement, hardness: one row each."""
    table = Table(title=f"clusters of {meta.get('dataset')} ({meta.get('encoder')})")
    table.add_column("diagnostic")
    table.add_column("value", justify="right")
    s = diag["sizes"]
    table.add_row("clusters", str(s["n_clusters"]))
    table.add_row("size min / median / max", f"{s['min']} / {s['median']:g} / {s['max']}")
    table.add_row("empty / tiny clusters", f"{s['n_empty']} / {s['n_tiny']}")
    if "false_negatives" in diag:
        fn = diag["false_negatives"]
        table.add_row("false-negative rate in-cluster / random",
                      f"{fn['in_cluster']:.4f} / {fn['random']:.4f} (lift {fn['lift']:.2f})")
    for key, label in (("content_hardness", "content cosine in-cluster / random"),
                       ("hardness", "model score in-cluster / random")):
        if key in diag:
            h = diag[key]
            table.add_row(label, f"{h['in_cluster']:.3f} / {h['random']:.3f} "
                                 f"(+{h['hardness']:.3f})")
    if "categories" in diag:
        c = diag["categories"]
        table.add_row(f"category NMI / purity (level {c['level']})",
                      f"{c['nmi']:.3f} / {c['purity']:.3f}")
    return table


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


@clusters_app.command("show")
def show_command(
    directory: Annotated[Path | None, typer.Argument(
        help="A directory saved by 'clusterneg cluster --out'; without it, cluster now.")] = None,
    dataset: str = typer.Option("ml-100k", help="Built-in name or data directory."),
    encoder: str = typer.Option("minilm", help=ENCODER_HELP),
    n_clusters: str = typer.Option("auto", help="Number of clusters, or 'auto'."),
    seed: int = typer.Option(0, help="k-means seed."),
    examples: int = typer.Option(3, help="Example titles per cluster."),
    limit: int = typer.Option(0, help="Show only the first N clusters (0: all)."),
    cache_dir: Annotated[Path | None, typer.Option(help="Cache root.")] = None,
) -> None:
    """A table of clusters: id, LLM-written name, size, example titles."""
    parse_n_clusters(n_clusters)
    at_least("--examples", examples, 0)
    at_least("--limit", limit, 0)
    if directory is not None:
        result = _load_named(directory, cache_dir)
    else:
        result = run_clustering(dataset, encoder, n_clusters, seed, cache_dir, {}, 5, None,
                                True)
    console.print(clusters_table(result, examples, limit))


def _load_named(directory: Path, cache_dir: Path | None) -> Any:
    """A saved result, named now (and saved back) if it was saved without names."""
    from clusterneg.cluster import ClusterResult, names_for
    from clusterneg.data.load import load_dataset
    from clusterneg.encode import embed_catalog

    result = ClusterResult.load(directory)
    if result.names is None:
        spec = result.meta.get("dataset_spec")
        if spec is None:
            raise ConfigError(f"{directory} has no names.json and no dataset_spec in meta.json")
        ds = load_dataset(spec)
        enc = result.meta.get("encoder_spec", "minilm")
        post = result.meta.get("embedding", {}).get("postprocess")
        with make_progress() as progress:
            emb = embed_catalog(ds.catalog, enc, cache=cache_dir, postprocess=post).vectors
            result.names = names_for(ds, emb, result, cache_dir, progress=progress)
        result.save(directory)
    return result


def clusters_table(result: Any, examples: int, limit: int) -> Table:
    """id, name, size, example titles."""
    sizes = result.diagnostics["sizes"]["sizes"]
    table = Table(title=f"{result.n_clusters} clusters of {result.meta.get('dataset')} "
                        f"({result.meta.get('encoder')})")
    for col, justify in (("id", "right"), ("name", "left"), ("size", "right"),
                         ("example titles", "left")):
        table.add_column(col, justify=justify)
    rows = range(result.n_clusters) if limit <= 0 else range(min(limit, result.n_clusters))
    for c in rows:
        name = result.names[c] if result.names else "-"
        ex = result.examples[c][:examples] if result.examples else []
        table.add_row(str(c), name, str(sizes[c]), "; ".join(t[:60] for t in ex))
    return table


def register(app: typer.Typer) -> None:
    """Attach ``clusterneg cluster`` and ``clusterneg clusters show`` to the root app."""
    app.command("cluster")(cluster_command)
    app.add_typer(clusters_app, name="clusters")
