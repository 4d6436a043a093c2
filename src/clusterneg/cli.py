"""The ``clusterneg`` command line: a thin typer shell over the library.

Each command lives in ``clusterneg.commands.<name>`` and only parses options and calls a typed
library function (STYLE.md, spaCy CLI). One error contract for every command (issue 9):

- a usage error (unknown option, bad value, missing argument) and any
  :class:`~clusterneg.errors.ClusternegError`: one line on stderr, exit code 2;
- Ctrl-C: one line, exit code 130;
- anything else: one line naming the error, exit code 1;
- no traceback for any input unless ``--debug`` is given.
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from clusterneg import __version__
from clusterneg.allocator import keep_freed_memory
from clusterneg.errors import ClusternegError

app = typer.Typer(
    name="clusterneg",
    help="Two-tower retrieval with real-time hard negatives from LLM-derived item clusters.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _version(value: bool) -> None:
    if value:
        typer.echo(f"clusterneg {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show a traceback on errors."),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True,
                                help="More log output (-v info, -vv debug)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors and results."),
) -> None:
    """Two-tower retrieval with real-time hard negatives from LLM-derived item clusters."""
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else
                                         logging.INFO if verbose else logging.WARNING)
    logging.getLogger().setLevel(level)
    from clusterneg.commands import _common

    _common.set_verbosity(-1 if quiet else verbose)


def _register() -> None:
    """Attach every command module of ``clusterneg.commands`` (each has ``register(app)``;
    modules whose name starts with "_" are helpers). A new command is a new module there."""
    import importlib
    import pkgutil

    from clusterneg import commands

    for info in pkgutil.iter_modules(commands.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"clusterneg.commands.{info.name}").register(app)


def _usage_error_types() -> tuple[type[BaseException], ...]:
    """The exception classes of the click that typer actually uses.

    typer 0.29 bundles its own click (``typer._click``) whose exceptions derive from
    ``typer.exceptions.TyperException``; older typers use the ``click`` package.
    """
    types: list[type[BaseException]] = []
    try:
        from typer.exceptions import TyperException

        types.append(TyperException)
    except ImportError:
        pass
    try:
        import click

        types.append(click.ClickException)
    except ImportError:
        pass
    return tuple(types)


def _fail(message: str, code: int) -> None:
    print(message.replace("\n", " ").strip(), file=sys.stderr)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app under the one error contract described above."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    keep_freed_memory()  # same-sized tensors every step: reuse them, no page faults
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    usage_errors = _usage_error_types()
    try:
        _register()
        code = app(args=args, standalone_mode=False, prog_name="clusterneg")
        # typer turns Ctrl-C (and any typer.Exit) into a returned exit code here
        if code == EXIT_INTERRUPTED:
            raise KeyboardInterrupt
        if isinstance(code, int) and code:
            sys.exit(code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        _fail("interrupted (Ctrl-C): nothing half-written was kept; an interrupted compare "
              "continues with --resume", EXIT_INTERRUPTED)
    except ClusternegError as exc:
        if debug:
            raise
        _fail(f"error: {exc}", EXIT_USAGE)
    except usage_errors as exc:
        if debug:
            raise
        _fail(_usage_line(exc), int(getattr(exc, "exit_code", EXIT_USAGE)) or EXIT_USAGE)
    except Exception as exc:
        if debug:
            raise
        _fail(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", 1)


def _usage_line(exc: BaseException) -> str:
    """``error: <message> (see 'clusterneg CMD --help')`` on one line."""
    fmt = getattr(exc, "format_message", None)
    message = fmt() if callable(fmt) else str(exc)
    ctx = getattr(exc, "ctx", None)
    where = getattr(ctx, "command_path", None) or "clusterneg"
    return f"error: {message} (see '{where} --help')"


if __name__ == "__main__":
    main()
