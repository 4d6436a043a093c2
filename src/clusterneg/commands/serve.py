"""``clusterneg serve RUN``: the HTTP service (FastAPI + uvicorn) on 127.0.0.1 by default."""

from __future__ import annotations

from pathlib import Path

import typer

from clusterneg.commands._common import err_console
from clusterneg.errors import ConfigError


def serve_command(
    run_dir: Path = typer.Argument(..., help="A run directory written by train/compare."),
    host: str = typer.Option("127.0.0.1", help="Address to bind (loopback by default)."),
    port: int = typer.Option(8000, help="TCP port."),
    threads: int = typer.Option(1, help="torch threads for the towers."),
) -> None:
    """Serve /health, /recommend and /items (API key from $CLUSTERNEG_API_KEY)."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, got {port}")
    import torch
    import uvicorn

    from clusterneg.serve.app import API_KEY_ENV, create_app
    from clusterneg.serve.retriever import Retriever

    torch.set_num_threads(max(1, threads))
    retriever = Retriever.open(run_dir)
    app = create_app(retriever)
    err_console.print(f"serving {run_dir} on http://{host}:{port} "
                      f"({retriever.n_items} items, {retriever.index_kind} index; POST /items "
                      f"needs ${API_KEY_ENV})")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
