"""``clusterneg data stats``: table / JSON output, and one line + exit code 2 on bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import typer

import clusterneg.cli as cli
from clusterneg.commands import data as data_command

INTER = (
    "user_id:token\titem_id:token\ttimestamp:float\n"
    "10\ta\t300\n2\tb\t100\n10\tb\t200\n2\tc\t50\n7\ta\t10\n"
)
ITEM = (
    "item_id:token\ttitle:token_seq\tyear:token\n"
    "a\tAlpha\t1995\nb\tBeta\t\nc\tGamma\t1990\nd\tD\t1\n"
)


def atomic(tmp: Path, inter: str | bytes = INTER, item: str | bytes = ITEM) -> Path:
    d = tmp / "ds"
    d.mkdir(parents=True, exist_ok=True)
    for name, text in (("ds.inter", inter), ("ds.item", item)):
        (d / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    return d


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, cli_run):
    """Run ``clusterneg.cli.main`` with only the data command attached (other commands are
    other modules' business); returns (exit code, stdout, stderr)."""
    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    monkeypatch.setattr(cli, "app", app)
    monkeypatch.setattr(cli, "_register", lambda: data_command.register(app))

    return cli_run


def test_stats_json_values(run, tmp_path: Path) -> None:
    code, out, err = run("data", "stats", "--dataset", str(atomic(tmp_path)), "--json")
    assert code == 0, err
    s = json.loads(out)
    assert (s["n_users"], s["n_items"], s["n_interactions"]) == (3, 4, 5)
    assert s["density"] == pytest.approx(5 / 12)
    assert s["per_user"] == {"min": 1, "median": 2.0, "mean": pytest.approx(5 / 3), "max": 2}
    assert s["per_item"]["min"] == 0 and s["items_without_interactions"] == 1  # item d
    assert s["top100_share"] == 1.0
    assert s["text_fields"] == {"title": 0.0, "year": 0.25}
    assert s["has_order"] is True and s["order_min"] == 10 and s["order_max"] == 300
    assert s["repeated_pairs"] == 0 and s["presplit"] is None


def test_stats_table(run, tmp_path: Path) -> None:
    code, out, _ = run("data", "stats", "--dataset", str(atomic(tmp_path)))
    assert code == 0
    assert "n_interactions" in out and "text field 'year' empty" in out and "25.0%" in out


def test_stats_builtin_default(run) -> None:
    code, out, _ = run("data", "stats", "--json")
    assert code == 0 and json.loads(out)["n_interactions"] == 100000


BAD: dict[str, tuple[Callable[[Path], Path], str, str]] = {
    "missing column": (lambda t: atomic(t, inter="user_id:token\n1\n"),
                       "ds.inter:1:", "field 'item_id': missing column"),
    "unparsable number": (lambda t: atomic(t, inter=INTER.replace("\t200\n", "\tx\n")),
                          "ds.inter:4:", "field 'timestamp': expected a finite number, got 'x'"),
    "wrong field count": (lambda t: atomic(t, inter=INTER + "1\ta\n"),
                          "ds.inter:7:", "expected 3 fields"),
    "unknown item": (lambda t: atomic(t, inter=INTER + "1\tq\t5\n"),
                     "ds.inter:7:", "field 'item_id': unknown item id 'q': not in ds.item"),
    "empty file": (lambda t: atomic(t, inter=""), "ds.inter:", "empty file"),
    "duplicate item": (lambda t: atomic(t, item=ITEM + "b\tB2\t2\n"),
                       "ds.item:6:", "duplicate item id 'b' (first on line 3)"),
    "non-utf8": (lambda t: atomic(t, item=ITEM.encode().replace(b"Beta", b"B\xe9ta")),
                 "ds.item:3:", "not valid utf-8 text"),
    "no such dataset": (lambda t: t / "missing", "missing:", "not a built-in dataset"),
    "unknown format": (lambda t: t, ":", "no known dataset format; expected one of"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_exit_2(run, tmp_path: Path, case: str) -> None:
    build, where, what = BAD[case]
    code, out, err = run("data", "stats", "--dataset", str(build(tmp_path)))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: {tmp_path}"), lines[0]
    assert where in lines[0] and what in lines[0], lines[0]
    assert "Traceback" not in err and out == ""


def test_config_error_exit_2(run, tmp_path: Path) -> None:
    code, _, err = run("data", "stats", "--dataset", str(atomic(tmp_path)), "--min-rating", "3")
    assert code == 2 and "rating" in err and len(err.strip().splitlines()) == 1


def test_full_cli_registers_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The real root app (every command module, imported for real: a module that fails to
    import fails this test) exposes ``data stats``."""
    cli.main(["data", "stats", "--json", "--dataset", str(atomic(tmp_path))])
    assert json.loads(capsys.readouterr().out)["n_interactions"] == 5
