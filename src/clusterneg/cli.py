"""The ``clusterneg`` command line: a thin typer shell over the library.

Each command lives in ``clusterneg.commands.<name>`` and only parses options and calls a typed
library function (STYLE.md, spaCy CLI). Any :class:`~clusterneg.errors.ClusternegError` becomes
one line on stderr and exit code 2, with no traceback.
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from clusterneg.errors import ClusternegError

app = typer.Typer(
    name="clusterneg",
    help="Two-tower retrieval with real-time hard negatives from LLM-derived item clusters.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    """Attach every command module that exists (modules register on import)."""
    import importlib

    for name in ("data", "train", "evaluate", "embed", "cluster", "compare", "ladder", "serve"):
        try:
            module = importlib.import_module(f"clusterneg.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"clusterneg.commands.{name}":
                raise
            continue
        module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning user errors into one line and exit code 2."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _register()
    try:
        app(args=argv, standalone_mode=False)
    except ClusternegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
