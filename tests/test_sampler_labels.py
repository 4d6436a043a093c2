"""``NAME@LABEL`` sampler specs: one comparison holds the same sampler twice under two option
sets and pairs them over users, as it pairs different samplers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from clusterneg.errors import ConfigError
from clusterneg.samplers import sampler_of, split_spec


def test_a_spec_is_a_known_sampler_and_an_optional_label() -> None:
    assert split_spec("cluster-goobs@r1.3") == ("cluster-goobs", "r1.3")
    assert split_spec(" in-batch ") == ("in-batch", None)
    assert sampler_of("goobs@cached") == "goobs"
    for bad in ("goobs@", "goobs@a/b", "goobs@-x", "nosuch@x", "goobs@a b"):
        with pytest.raises(ConfigError):
            split_spec(bad)


def test_compare_runs_one_sampler_twice_with_its_own_options(tiny_compare) -> None:
    code, err, out = tiny_compare("--samplers", "in-batch,goobs,goobs@cached",
                                  "-o", "goobs@cached:cached_vectors=true",
                                  "--protocol", "paper")
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    rows = {r["sampler"]: r for r in results["runs"]}
    assert list(rows) == ["in-batch", "goobs", "goobs@cached"]
    plain, cached = (rows[s]["config"]["sampler"] for s in ("goobs", "goobs@cached"))
    assert plain["name"] == cached["name"] == "goobs"  # the same sampler class...
    assert cached["options"]["cached_vectors"] is True  # ... under its own options
    assert plain["options"]["cached_vectors"] is False
    # the protocol's preset reaches the labelled spec too (paper: 32 negatives off MovieLens)
    assert plain["options"]["n_negatives"] == cached["options"]["n_negatives"] == 32
    assert (out / "runs" / "goobs@cached-seed0").is_dir()
    report = (out / "results.md").read_text()
    assert "goobs@cached" in report
    assert "goobs@cached" in json.dumps(results["significance"])  # paired like any sampler
    # the epoch lines on stderr name the labelled spec, not only the sampler
    lines = err.splitlines()
    assert any(m.startswith("goobs@cached seed 0 epoch 1/1") for m in lines), err
    assert any(m.startswith("goobs seed 0 epoch 1/1") for m in lines), err


@pytest.mark.parametrize(("samplers", "options", "expect"), [
    ("in-batch,goobs@", [], "label"),
    ("in-batch,goobs,goobs", [], "twice"),
    ("in-batch,goobs@a", ["-o", "goobs@b:cached_vectors=true"], "not in --samplers"),
])
def test_bad_specs_fail_with_one_line_and_exit_2(tmp_path: Path, samplers: str,
                                                 options: list[str], expect: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "clusterneg.cli", "compare", "--samplers", samplers, *options,
         "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert expect in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
