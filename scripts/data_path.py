"""Measure the source files ``clusterneg compare`` touches and look for import circles.

Two runs on a small generated fixture with precomputed item vectors, each under a tracer
that records every ``src/clusterneg`` file with a function called during the run (every
module is imported beforehand, so import-time code does not count):

1. the data path proper, through the library, for one sampler (cluster-goobs): text ->
   embedding -> clusters -> pool -> negatives -> loss -> metrics -> report;
2. ``clusterneg compare --samplers all --budget 2`` through the CLI (every sampler, every
   command module registered).

Then builds the static graph of module-level imports between clusterneg modules and reports
its strongly connected components (a circle is a component of more than one module; the
implicit "a submodule imports its package first" edge is not counted).

Run: PYTHONPATH=src python scripts/data_path.py
"""

from __future__ import annotations

import ast
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "clusterneg"
sys.path.insert(0, str(ROOT / "tests"))


def fixture(tmp: Path) -> tuple[Path, Path]:
    from conftest import write_synthetic

    data = write_synthetic(tmp / "ds", n_users=40, n_items=50, per_user=10)
    emb = tmp / "emb.npy"
    np.save(emb, np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32))
    return data, emb


def traced(fn) -> set[str]:  # noqa: ANN001
    """Files under src/clusterneg with a function called while ``fn()`` runs."""
    touched: set[str] = set()

    def tracer(frame, event, arg):  # noqa: ANN001
        name = frame.f_code.co_filename
        if name.startswith(str(SRC)):
            touched.add(name)
        return None

    import importlib
    import pkgutil

    import clusterneg
    from clusterneg import cli

    # import every module first, so that only code the run calls counts (not import time)
    for info in pkgutil.walk_packages(clusterneg.__path__, "clusterneg."):
        importlib.import_module(info.name)

    del cli
    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(None)
    return {str(Path(f).relative_to(SRC.parent)) for f in touched}


def cli_compare_all(tmp: Path) -> None:
    """``clusterneg compare --samplers all --budget 2`` through the CLI."""
    from clusterneg import cli

    data, emb = fixture(tmp)
    try:
        cli.main(["compare", "--dataset", str(data), "--encoder", f"precomputed:{emb}",
                  "--n-clusters", "4", "--samplers", "all", "--budget", "2", "--epochs", "1",
                  "--batch-size", "32", "--dim", "8", "--history-len", "0", "--threads", "1",
                  "--no-names", "--out", str(tmp / "out")])
    except SystemExit as exc:
        if exc.code:
            raise


def library_path_one_sampler(tmp: Path) -> None:
    """The data path proper: text -> embedding -> clusters -> pool -> negatives -> loss ->
    metrics -> report, for cluster-goobs, through the library (no CLI)."""
    from clusterneg.compare import CompareConfig, compare
    from clusterneg.experiment import ExperimentConfig, prepare
    from clusterneg.model import ModelConfig
    from clusterneg.report import write_results
    from clusterneg.report.inputs import build_report_inputs
    from clusterneg.train.config import TrainConfig

    data, emb = fixture(tmp)
    prep = prepare(ExperimentConfig(dataset=str(data), encoder=f"precomputed:{emb}",
                                    n_clusters=4, cache_dir=str(tmp / "cache")))
    cfg = CompareConfig(samplers=["cluster-goobs"], model=ModelConfig(dim=8, history_len=0),
                        train=TrainConfig(epochs=1, batch_size=32, threads=1))
    results, raw = compare(prep, cfg)
    write_results(tmp / "lib", results, build_report_inputs(prep, raw))


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> clusterneg modules it imports at module level."""
    files = {module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        for node in ast.parse(path.read_text()).body:  # module level only
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                base = node.module
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base
                           for a in node.names]
            for t in targets:
                if t in files and t != mod and not mod.startswith(t + "."):
                    graph[mod].add(t)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main() -> None:
    total = len(list(SRC.rglob("*.py")))
    print(f"source files in src/clusterneg: {total}")
    for name, fn in (("library data path, one sampler (cluster-goobs)",
                      library_path_one_sampler),
                     ("CLI compare --samplers all --budget 2", cli_compare_all)):
        with tempfile.TemporaryDirectory() as d:
            touched = traced(lambda d=d, fn=fn: fn(Path(d)))
        print(f"{name}: {len(touched)} files with a function called")
        for f in sorted(touched):
            print("  ", f)
    found = circles(import_graph())
    print(f"import circles (module-level): {len(found)}")
    for c in found:
        print("  ", " <-> ".join(c))


if __name__ == "__main__":
    main()
