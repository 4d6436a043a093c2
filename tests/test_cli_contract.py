"""What a successful command says and records (issue 9): exit 0 every time, data shown as
text (never as terminal markup), provenance in every run, a run's saved options replay it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import write_synthetic

SRC = Path(__file__).resolve().parents[1] / "src"


def _cli(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(SRC), CLUSTERNEG_CACHE=str(tmp / "cache"),
               OMP_NUM_THREADS="1", COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "clusterneg.cli", *args], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=600)


def test_data_stats_json_exits_0_every_time(tmp_path: Path) -> None:
    """pyarrow's threaded CSV reader used to abort at exit (134); bench/exit_codes.py runs 50."""
    data = write_synthetic(tmp_path / "data")
    codes = [_cli(tmp_path, "data", "stats", "--json", "--dataset", str(data)).returncode
             for _ in range(5)]
    assert codes == [0] * 5


def test_markup_in_titles_and_paths_is_printed_as_text(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "data [/INST]")
    items = (data / "items.csv").read_text().replace("Space Opera", "[/INST] [bold]Space")
    (data / "items.csv").write_text(items)
    proc = _cli(tmp_path, "data", "stats", "--dataset", str(data))
    assert proc.returncode == 0, proc.stderr
    assert "data [/INST]" in proc.stdout


def test_clusters_table_shows_names_literally() -> None:
    from types import SimpleNamespace

    from rich.console import Console

    from clusterneg.commands._common import console
    from clusterneg.commands.cluster import clusters_table

    result = SimpleNamespace(n_clusters=1, names=["[/INST] thrillers"], examples=[["[b]x"]],
                             diagnostics={"sizes": {"sizes": [3]}}, meta={"dataset": "d"})
    out = Console(markup=console._markup, width=120, record=True, file=open(os.devnull, "w"))
    out.print(clusters_table(result, 3, 0))
    text = out.export_text()
    assert "[/INST] thrillers" in text and "[b]x" in text


def test_run_records_provenance_and_its_command_replays(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "data")
    first = _cli(tmp_path, "-q", "train", "--dataset", str(data), "--encoder", "none",
                 "--epochs", "1", "--batch-size", "32", "--dim", "8", "--lr", "0.01",
                 "--threads", "1", "--out", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    assert first.stderr == ""  # -q: results on stdout, nothing else
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    prov = config["provenance"]
    assert {"clusterneg", "git_commit", "argv", "libraries", "threads", "device",
            "dataset_fingerprint", "n_clusters"} <= set(prov)
    assert prov["threads"] == 1 and prov["argv"][0] == "clusterneg"
    again = _cli(tmp_path, "-q", "train", "--config", str(tmp_path / "a" / "command.yaml"),
                 "--out", str(tmp_path / "b"))
    assert again.returncode == 0, again.stderr
    replay = json.loads((tmp_path / "b" / "config.json").read_text())
    for part in ("experiment", "model", "train"):
        assert replay[part] == config[part]
    assert replay["train"]["lr"] == 0.01
    metrics = [json.loads((tmp_path / r / "metrics.json").read_text())["test"]
               for r in ("a", "b")]
    assert metrics[0] == metrics[1]  # same options, same seed: the same model


def test_samplers_lists_options_defaults_and_citations(tmp_path: Path) -> None:
    from clusterneg.samplers import SAMPLER_NAMES

    listing = _cli(tmp_path, "samplers")
    assert listing.returncode == 0, listing.stderr
    assert all(name in listing.stdout for name in SAMPLER_NAMES)
    one = _cli(tmp_path, "samplers", "cluster-goobs")
    assert one.returncode == 0 and "arXiv 2607.00448" in one.stdout
    assert "n_cluster" in one.stdout and "mask_user_items" in one.stdout


def test_help_version_and_option_errors_do_not_load_torch(tmp_path: Path) -> None:
    """Every command registers without importing torch (its modules import the heavy code
    inside the command), so ``--help``, ``--version``, a bad option and ``data stats`` answer
    in well under a second; ``defaults.py`` holds what the options show."""
    data = write_synthetic(tmp_path / "data")
    probe = ("import sys\nfrom clusterneg import cli\ncli._register()\n"
             "for argv in (['--version'], ['--help'], ['index', '--help'], ['recommend', '--k'],\n"
             f"             ['data', 'stats', '--dataset', {str(data)!r}]):\n"
             "    try:\n        cli.main(argv)\n    except SystemExit:\n        pass\n"
             "print('torch loaded:', 'torch' in sys.modules, file=sys.stderr)\n")
    env = dict(os.environ, PYTHONPATH=str(SRC), COLUMNS="200")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert "torch loaded: False" in proc.stderr, proc.stderr
    assert "clusterneg" in proc.stdout and "recommend" in proc.stdout
