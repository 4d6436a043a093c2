"""Shared fixtures: a small synthetic interaction table with item text, written as CSV."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytest_plugins = ["serve_fixtures"]  # the tiny trained run of the serving tests

CliRun = Callable[..., tuple[int, str, str]]

GENRES = ["space opera", "courtroom drama", "cooking show", "mountain hiking", "jazz piano"]


def write_synthetic(path: Path, n_users: int = 60, n_items: int = 50, per_user: int = 12,
                    seed: int = 0) -> Path:
    """Users who mostly like one of five topics; items titled by topic. CSV tables."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    topic = np.arange(n_items) % len(GENRES)
    rows = ["user_id,item_id,timestamp"]
    for u in range(n_users):
        fav = u % len(GENRES)
        pool = np.flatnonzero(topic == fav)
        others = np.flatnonzero(topic != fav)
        picks = np.concatenate([rng.choice(pool, per_user - 2, replace=False),
                                rng.choice(others, 2, replace=False)])
        rng.shuffle(picks)
        rows += [f"u{u},i{it},{t}" for t, it in enumerate(picks)]
    (path / "interactions.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    items = ["item_id,title,genre"] + [
        f"i{j},{GENRES[topic[j]].title()} number {j},{GENRES[topic[j]]}" for j in range(n_items)
    ]
    (path / "items.csv").write_text("\n".join(items) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def synthetic_dir(tmp_path: Path) -> Path:
    return write_synthetic(tmp_path / "synthetic")


@pytest.fixture
def tiny_compare(synthetic_dir: Path, tmp_path: Path, cli_run: CliRun,
                 monkeypatch: pytest.MonkeyPatch):
    """``tiny_compare(*args)`` -> (exit code, stderr, out dir): ``clusterneg compare`` on the
    synthetic table with seeded 4-d precomputed embeddings, 5 clusters, one epoch of small
    towers and no cluster names, plus ``args`` (samplers, options...)."""
    monkeypatch.setenv("CLUSTERNEG_CACHE", str(tmp_path / "cache"))
    emb = tmp_path / "emb.npy"
    np.save(emb, np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32))

    def _run(*args: str) -> tuple[int, str, Path]:
        out = tmp_path / "cmp"
        code, _, err = cli_run(
            "compare", "--dataset", str(synthetic_dir), "--encoder", f"precomputed:{emb}",
            "--n-clusters", "5", "--epochs", "1", "--batch-size", "32", "--dim", "8",
            "--history-len", "0", "--threads", "1", "--no-names", "--out", str(out), *args)
        return code, err, out

    return _run


@pytest.fixture
def cli_run(capsys: pytest.CaptureFixture[str]) -> CliRun:
    """``clusterneg.cli.main(args)`` -> (exit code, stdout, stderr), SystemExit caught."""
    from clusterneg import cli

    def _run(*args: str) -> tuple[int, str, str]:
        code = 0
        try:
            cli.main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return _run
