"""``clusterneg embed``: encode a dataset's items (cached) and optionally write the vectors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.progress import (
    Progress,
    ProgressColumn,
    Task,
)
from rich.table import Table
from rich.text import Text

from clusterneg.commands._common import Threads, console, parse_options
from clusterneg.commands._common import make_progress as _make_progress
from clusterneg.errors import ConfigError
from clusterneg.validate import non_negative, positive

ENCODER_HELP = "minilm | smollm2 | a model directory | a .gguf file | precomputed:PATH"


class ItemsPerSecond(ProgressColumn):
    """Rich column: throughput in items/s."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- items/s" if speed is None else f"{speed:,.1f} items/s", style="cyan")


def make_progress() -> Progress:
    """The shared progress bar (:func:`clusterneg.commands._common.make_progress`) with items/s."""
    return _make_progress(ItemsPerSecond())


def encoder_options(batch_size: int | None, pooling: str | None, dtype: str | None,
                    extra: list[str] | None, device: str = "cpu") -> dict[str, Any]:
    """Encoder keyword options from the command line (only those given; ``device`` only
    when it is not the default cpu, as precomputed vectors take none)."""
    from clusterneg.validate import device as check_device

    check_device(device)
    opts = {k: v for k, v in (("batch_size", batch_size), ("pooling", pooling),
                              ("dtype", dtype)) if v is not None}
    if device != "cpu":
        opts["device"] = device
    opts.update(parse_options(extra))
    return opts


def write_vectors(path: Path, item_ids: np.ndarray, vectors: np.ndarray) -> None:
    """``.npy`` (rows in item-index order) or ``.parquet`` (item_id + vector), atomically."""
    from clusterneg.outputs import atomic_write

    check_vector_path(path)
    if path.suffix == ".npy":
        atomic_write(path, lambda f: np.save(f, vectors))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        flat = pa.array(vectors.reshape(-1), type=pa.float32())
        col = pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])
        table = pa.table({"item_id": [str(i) for i in item_ids], "vector": col})
        atomic_write(path, lambda f: pq.write_table(table, f))


def check_vector_path(path: Path) -> Path:
    """``--out`` for vectors must end in ``.npy`` or ``.parquet``."""
    if path.suffix not in (".npy", ".parquet"):
        raise ConfigError(f"--out must end in .npy or .parquet, got {path}")
    return path


def embed_command(
    dataset: str = typer.Option("ml-100k", help="Built-in name (ml-100k) or data directory."),
    encoder: str = typer.Option("minilm", help=ENCODER_HELP),
    out: Annotated[Path | None, typer.Option(
        help="Write the vectors to FILE (.npy or .parquet).")] = None,
    template: str = typer.Option(None, help="Profile (movies, products) or fields 'a,b,c'."),
    postprocess: str = typer.Option(
        None, help="none | center | whiten | whiten:DIM (default: per encoder)."),
    batch_size: int = typer.Option(None, help="Texts per forward pass."),
    pooling: str = typer.Option(None, help="Causal LMs: mean | last."),
    dtype: str = typer.Option(None, help="float32 | bfloat16 (CPU autocast)."),
    cache_dir: Annotated[Path | None, typer.Option(
        help="Cache root (default $CLUSTERNEG_CACHE or ./.cache/clusterneg).")] = None,
    option: Annotated[list[str] | None, typer.Option(
        "--option", "-o", help="More encoder options KEY=VALUE.")] = None,
    overwrite: bool = typer.Option(False, help="Replace an existing --out file."),
    threads: Threads = 0,
    device: str = typer.Option("cpu", help="Encoder device: cpu, cuda, cuda:N or mps."),
) -> None:
    """Encode every item's text into a content embedding (cached by model and text)."""
    from clusterneg.outputs import check_file_output

    if out is not None:
        check_file_output(check_vector_path(out), overwrite)
    set_threads(threads)
    encoder_options(None, None, None, None, device)  # checks --device before any work
    if batch_size is not None:
        positive("--batch-size", batch_size)
    from clusterneg.data.load import load_dataset
    from clusterneg.encode import build_encoder, embed_catalog

    ds = load_dataset(dataset)
    opts = encoder_options(batch_size, pooling, dtype, option, device)
    if cache_dir is not None and encoder == "smollm2":
        opts.setdefault("model_cache", cache_dir / "models")
    enc = build_encoder(encoder, **opts)
    with make_progress() as progress:
        result = embed_catalog(ds.catalog, enc, template=template, cache=cache_dir,
                               postprocess=postprocess, progress=progress)
    if out is not None:
        write_vectors(out, ds.catalog.item_ids, result.vectors)
    console.print(summary_table(ds.name, result.vectors.shape, result.info, out))


def set_threads(threads: int) -> None:
    """``--threads``: torch intra-op threads (0 leaves torch's default)."""
    non_negative("--threads", threads)
    if threads:
        import torch

        torch.set_num_threads(threads)


def summary_table(name: str, shape: tuple[int, ...], info: dict[str, Any],
                  out: Path | None) -> Table:
    """What was embedded, how (cache hits, anisotropy), and where it went."""
    table = Table(title=f"embeddings of {name}")
    table.add_column("")
    table.add_column("value", justify="right")
    cache = info.get("cache") or {}
    rows = [("encoder", info["encoder"]), ("items x dim", f"{shape[0]} x {shape[1]}"),
            ("template", str(info.get("template", "-"))),
            ("cache hits / encoded", f"{cache.get('hits', '-')} / {cache.get('encoded', '-')}"),
            ("postprocess", info["postprocess"]),
            ("mean cosine of random pairs, raw", f"{info['anisotropy_raw']:.3f}"),
            ("mean cosine of random pairs, final", f"{info['anisotropy']:.3f}"),
            ("seconds", f"{info['seconds']:.2f}"), ("written to", str(out or "-"))]
    for key, value in rows:
        table.add_row(key, value)
    return table


def register(app: typer.Typer) -> None:
    """Attach ``clusterneg embed`` to the root app."""
    app.command("embed")(embed_command)
