"""``clusterneg samplers [NAME]``: the negative samplers, their options, defaults and the
paper each one comes from."""

from __future__ import annotations

import inspect
from typing import Annotated

import typer
from rich.table import Table

from clusterneg.commands._common import console, parse_sampler_name


def samplers_command(
    name: Annotated[str | None, typer.Argument(help="Show one sampler in full.")] = None,
) -> None:
    """List the samplers (or one sampler's options, defaults and citation)."""
    from clusterneg.samplers import SAMPLER_NAMES, SAMPLERS, sampler_options

    if name is None:
        table = Table(title="negative samplers (clusterneg train --sampler NAME -o KEY=VALUE)")
        for col in ("name", "options (defaults)", "from"):
            table.add_column(col)
        for n in SAMPLER_NAMES:
            opts = ", ".join(f"{k}={v!r}" for k, v in sampler_options(n).items())
            table.add_row(n, opts or "-", SAMPLERS[n].citation.split(",")[0])
        console.print(table)
        return
    name = parse_sampler_name(name)
    cls = SAMPLERS[name]
    console.print(f"{name}: {inspect.getdoc(cls).split(chr(10) * 2)[0].replace(chr(10), ' ')}")
    console.print(f"citation: {cls.citation}")
    table = Table(title=f"options of {name}")
    table.add_column("option")
    table.add_column("default", justify="right")
    for key, value in sampler_options(name).items():
        table.add_row(key, repr(value))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Attach ``clusterneg samplers`` to the root app."""
    app.command("samplers")(samplers_command)
