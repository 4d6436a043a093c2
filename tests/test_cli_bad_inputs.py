"""The CLI's error contract, the way users meet it: ``clusterneg`` as a separate process.

Each row of :data:`CASES` is one bad input from issue 9. For every one the process must exit
with code 2 (130 for Ctrl-C), print exactly one line on stderr, show no traceback, and leave
its working folder exactly as it found it: nothing written, nothing deleted (the user's own
folder and the dataset given as ``--out`` survive byte for byte).

Every case fails before any training or embedding, so the table runs in parallel in a few
seconds of wall time per core.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import write_synthetic

SRC = Path(__file__).resolve().parents[1] / "src"

D = "{data}"  # the synthetic dataset (a directory of CSV tables)
T = ["train", "--dataset", D, "--encoder", "none", "--out", "{w}/out"]
C = ["compare", "--dataset", D, "--encoder", "none", "--out", "{w}/cmp"]

# (case id, argv, expected exit code, a word the one line must contain)
CASES: list[tuple[str, list[str], int, str]] = [
    # usage errors, as the framework reports them
    ("unknown-global-option", ["--bogus"], 2, "--bogus"),
    ("unknown-command", ["nosuchcommand"], 2, "nosuchcommand"),
    ("unknown-train-option", ["train", "--bogus"], 2, "--bogus"),
    ("lr-not-a-number", ["train", "--lr", "abc"], 2, "--lr"),
    ("epochs-not-an-integer", ["train", "--epochs", "1.5"], 2, "--epochs"),
    ("epochs-word", ["train", "--epochs", "x"], 2, "--epochs"),
    ("option-missing-value", ["train", "--out"], 2, "--out"),
    ("evaluate-missing-argument", ["evaluate"], 2, "RUN_DIR"),
    ("stats-min-rating-word", ["data", "stats", "--min-rating", "abc"], 2, "--min-rating"),
    ("compare-seeds-word", ["compare", "--seeds", "abc"], 2, "--seeds"),
    ("embed-batch-size-word", ["embed", "--batch-size", "abc"], 2, "--batch-size"),
    ("clusters-show-examples-word", ["clusters", "show", "--examples", "abc"], 2,
     "--examples"),
    ("cluster-seed-word", ["cluster", "--seed", "abc"], 2, "--seed"),
    # option values checked before any work
    ("lr-nan", [*T, "--lr", "nan"], 2, "--lr"),
    ("lr-inf", [*T, "--lr", "inf"], 2, "--lr"),
    ("lr-negative", [*T, "--lr", "-1"], 2, "--lr"),
    ("lr-zero", [*T, "--lr", "0"], 2, "--lr"),
    ("temperature-nan", [*T, "--temperature", "nan"], 2, "--temperature"),
    ("temperature-zero", [*T, "--temperature", "0"], 2, "--temperature"),
    ("temperature-negative", [*T, "--temperature", "-0.5"], 2, "--temperature"),
    ("epochs-zero", [*T, "--epochs", "0"], 2, "--epochs"),
    ("epochs-negative", [*T, "--epochs", "-3"], 2, "--epochs"),
    ("batch-size-one", [*T, "--batch-size", "1"], 2, "--batch-size"),
    ("batch-size-zero", [*T, "--batch-size", "0"], 2, "--batch-size"),
    ("dim-zero", [*T, "--dim", "0"], 2, "--dim"),
    ("patience-zero", [*T, "--patience", "0"], 2, "--patience"),
    ("history-len-negative", [*T, "--history-len", "-5"], 2, "--history-len"),
    ("weight-decay-negative", [*T, "--weight-decay", "-1"], 2, "--weight-decay"),
    ("weight-decay-nan", [*T, "--weight-decay", "nan"], 2, "--weight-decay"),
    ("optimizer-unknown", [*T, "--optimizer", "sgd"], 2, "--optimizer"),
    ("optimizer-lazy-with-weight-decay", [*T, "--optimizer", "lazy-adam", "--weight-decay",
                                          "0.1"], 2, "--optimizer"),
    ("compare-optimizer-unknown", [*C, "--optimizer", "Adam"], 2, "--optimizer"),
    ("max-steps-zero", [*T, "--max-steps", "0"], 2, "--max-steps"),
    ("threads-negative", [*T, "--threads", "-4"], 2, "--threads"),
    ("n-clusters-word", [*T, "--n-clusters", "abc"], 2, "--n-clusters"),
    ("n-clusters-one", [*T, "--n-clusters", "1"], 2, "--n-clusters"),
    ("n-clusters-negative", [*T, "--n-clusters", "-3"], 2, "--n-clusters"),
    ("split-unknown", [*T, "--split", "sideways"], 2, "--split"),
    ("device-unknown", [*T, "--device", "tpu"], 2, "--device"),
    ("sampler-unknown", [*T, "--sampler", "nope"], 2, "nope"),
    ("sampler-option-no-equals", [*T, "-o", "foo"], 2, "KEY=VALUE"),
    ("sampler-option-unknown", [*T, "-o", "nope=3"], 2, "nope"),
    ("sampler-misspelt", [*T, "--sampler", "cluster-gobs"], 2,
     "did you mean 'cluster-goobs'?"),
    ("sampler-option-misspelt", [*T, "--sampler", "goobs", "-o", "n_negative=4"], 2,
     "unknown goobs option 'n_negative' (did you mean 'n_negatives'?)"),
    ("compare-epochs-zero", [*C, "--epochs", "0"], 2, "--epochs"),
    ("compare-seeds-zero", [*C, "--seeds", "0"], 2, "--seeds"),
    ("compare-budget-zero", [*C, "--budget", "0"], 2, "--budget"),
    ("compare-jobs-zero", [*C, "--jobs", "0"], 2, "--jobs"),
    ("compare-sampler-unknown", [*C, "--samplers", "foo"], 2, "foo"),
    ("compare-one-sampler-unknown", [*C, "--samplers", "in-batch,foo"], 2, "foo"),
    ("compare-sampler-misspelt", [*C, "--samplers", "in-batch,gobs"], 2,
     "unknown sampler 'gobs' (did you mean 'goobs'?)"),
    ("compare-option-unknown-sampler", [*C, "-o", "foo:n_negatives=1"], 2, "foo"),
    ("compare-option-unknown-key", [*C, "-o", "in-batch:nope=1"], 2, "nope"),
    ("compare-option-sampler-not-run", [*C, "--samplers", "in-batch", "-o",
                                        "mixed:n_negatives=4"], 2, "mixed"),
    ("compare-option-no-sampler", [*C, "-o", "n_negatives=4"], 2, "SAMPLER"),
    ("compare-resume-and-overwrite", [*C, "--resume", "--overwrite"], 2, "--resume"),
    ("compare-lr-nan", [*C, "--lr", "nan"], 2, "--lr"),
    ("compare-n-clusters-word", [*C, "--n-clusters", "abc"], 2, "--n-clusters"),
    ("compare-temperature-inf", [*C, "--temperature", "inf"], 2, "--temperature"),
    ("compare-threads-negative", [*C, "--threads", "-1"], 2, "--threads"),
    ("evaluate-k-too-large", ["evaluate", "{run}", "--k", "500"], 2, "--k"),
    ("evaluate-k-zero", ["evaluate", "{run}", "--k", "0"], 2, "--k"),
    ("evaluate-split-unknown", ["evaluate", "{run}", "--split", "train"], 2, "--split"),
    ("embed-out-wrong-suffix", ["embed", "--dataset", D, "--out", "{w}/v.txt"], 2, ".npy"),
    ("embed-out-existing-file", ["embed", "--dataset", D, "--out", "{w}/notes.npy"], 2,
     "--overwrite"),
    ("embed-batch-size-zero", ["embed", "--dataset", D, "--batch-size", "0"], 2,
     "--batch-size"),
    ("embed-threads-negative", ["embed", "--dataset", D, "--threads", "-1"], 2, "--threads"),
    ("cluster-n-clusters-word", ["cluster", "--dataset", D, "--n-clusters", "abc"], 2,
     "--n-clusters"),
    ("cluster-min-size-zero", ["cluster", "--dataset", D, "--min-cluster-size", "0"], 2,
     "--min-cluster-size"),
    ("embed-device-unknown", ["embed", "--dataset", D, "--device", "tpu"], 2, "--device"),
    ("cluster-device-unknown", ["cluster", "--dataset", D, "--device", "tpu"], 2, "--device"),
    ("samplers-unknown", ["samplers", "nope"], 2, "nope"),
    ("clusters-show-limit-negative", ["clusters", "show", "--limit", "-1"], 2, "--limit"),
    # output safety: nothing that is not a run is ever replaced
    ("train-out-user-folder", [*T[:-1], "{w}/thesis", "--overwrite"], 2, "not empty"),
    ("train-out-dataset", [*T[:-1], D, "--overwrite"], 2, "not empty"),
    ("train-out-a-file", [*T[:-1], "{w}/notes.npy"], 2, "not a directory"),
    ("train-out-under-a-file", [*T[:-1], "{w}/notes.npy/run"], 2, "not a directory"),
    ("train-out-existing-run", [*T[:-1], "{run}"], 2, "--overwrite"),
    ("compare-out-user-folder", [*C[:-1], "{w}/thesis"], 2, "not empty"),
    ("compare-out-dataset", [*C[:-1], D, "--overwrite"], 2, "not empty"),
    ("compare-resume-foreign-folder", [*C[:-1], "{w}/thesis", "--resume"], 2, "not empty"),
    ("cluster-out-user-folder", ["cluster", "--dataset", D, "--out", "{w}/thesis"], 2,
     "not empty"),
    ("evaluate-save-topk-existing", ["evaluate", "{run}", "--save-topk", "{w}/notes.npy"], 2,
     "--overwrite"),
    ("evaluate-save-topk-folder", ["evaluate", "{run}", "--save-topk", "{w}/thesis"], 2,
     "directory"),
    # data that cannot be trusted
    ("dataset-missing", [*T[:2], "{w}/nowhere", *T[3:]], 2, "nowhere"),
    ("stats-dataset-missing", ["data", "stats", "--dataset", "{w}/nowhere"], 2, "nowhere"),
    ("weights-negative", [*T[:2], "{w}/negw", *T[3:]], 2, "weight"),
    ("weights-nan", [*T[:2], "{w}/nanw", *T[3:]], 2, "weight"),
    ("stats-weights-negative", ["data", "stats", "--dataset", "{w}/negw"], 2, "weight"),
    ("one-interaction-per-user", [*T[:2], "{w}/tiny", *T[3:]], 2, "tiny"),
    ("single-item", [*T[:2], "{w}/oneitem", *T[3:]], 2, "oneitem"),
    ("precomputed-nan", [*T[:4], "precomputed:{w}/nan.npy", *T[5:]], 2, "NaN"),
    ("precomputed-wrong-rows", [*T[:4], "precomputed:{w}/short.npy", *T[5:]], 2, "rows"),
    ("warmup-negative", [*T[:4], "precomputed:{w}/emb.npy", *T[5:], "--n-clusters", "3",
                         "--sampler", "cluster-goobs", "-o", "warmup_steps=-1"], 2,
     "warmup_steps"),
    ("cached-vectors-with-store-rows", [*T[:4], "precomputed:{w}/emb.npy", *T[5:],
                                        "--n-clusters", "3", "--sampler", "goobs", "-o",
                                        "cached_vectors=true", "-o", "store_rows=true"], 2,
     "cached_vectors"),
    ("warmup-block-logq", [*T[:4], "precomputed:{w}/emb.npy", *T[5:], "--n-clusters", "3",
                           "--sampler", "cluster-goobs", "-o", "warmup_steps=5", "-o",
                           "logq_mode=block"], 2, "warmup_steps"),
    ("evaluate-not-a-folder", ["evaluate", "{w}/nowhere"], 2, "nowhere"),
    ("evaluate-foreign-folder", ["evaluate", "{w}/thesis"], 2, "model.safetensors"),
    ("evaluate-truncated-weights", ["evaluate", "{w}/damaged"], 2, "SHA-256"),
    ("evaluate-bad-config-json", ["evaluate", "{w}/badjson"], 2, "config.json"),
    ("evaluate-other-dataset", ["evaluate", "{w}/otherdata"], 2, "fingerprint"),
    ("clusters-show-not-saved", ["clusters", "show", "{w}/thesis"], 2, "thesis"),
    ("clusters-show-edited", ["clusters", "show", "{w}/edited"], 2, "item_cluster"),
    ("config-missing", [*T, "--config", "{w}/none.yaml"], 2, "none.yaml"),
    ("config-bad-yaml", [*T, "--config", "{w}/bad.yaml"], 2, "bad.yaml"),
    ("config-unknown-key", [*T, "--config", "{w}/unknown.yaml"], 2, "lerning_rate"),
    ("config-lr-word", [*T, "--config", "{w}/lrword.yaml"], 2, "lr"),
    ("config-lr-nan", [*T, "--config", "{w}/lrnan.yaml"], 2, "--lr"),
    # data synth's sub-topics: a focus needs facets, and both have bounds
    ("synth-focus-without-facets", ["data", "synth", "--focus", "0.5", "--out", "{w}/syn"], 2,
     "facets"),
    ("synth-focus-above-one", ["data", "synth", "--facets", "4", "--focus", "1.5", "--out",
                               "{w}/syn"], 2, "focus"),
    ("synth-zero-facets", ["data", "synth", "--facets", "0", "--out", "{w}/syn"], 2, "facets"),
]


def _fake_run(path: Path, dataset: str, truncate: bool = False,
              fingerprint: str = "0") -> None:
    """A run directory as ``train`` writes it (real safetensors bytes, recorded checksum)."""
    from safetensors.numpy import save

    blob = save({"x": np.zeros(4, np.float32)})
    path.mkdir()
    (path / ".clusterneg-run").write_text('{"kind": "train", "complete": true}')
    (path / "model.safetensors").write_bytes(blob[:-5] if truncate else blob)
    config = {"experiment": {"dataset": dataset, "encoder": "none"}, "model": {}, "train": {},
              "weights_sha256": hashlib.sha256(blob).hexdigest(),
              "provenance": {"dataset_fingerprint": fingerprint}}
    (path / "config.json").write_text(json.dumps(config))


def _table(path: Path, rows: list[str], items: int = 5) -> None:
    path.mkdir()
    (path / "interactions.csv").write_text("\n".join(rows) + "\n")
    (path / "items.csv").write_text("item_id,title\n" + "".join(
        f"i{j},Item {j}\n" for j in range(items)))


def _build_world(w: Path) -> None:
    """The user's files, a dataset, and damaged inputs, all inside ``w``."""
    data = write_synthetic(w / "data", n_users=20, n_items=25, per_user=6)
    (w / "thesis").mkdir()
    (w / "thesis" / "chapter1.tex").write_text("six months of work")
    (w / "notes.npy").write_bytes(b"the user's notes")
    _table(w / "negw", ["user_id,item_id,weight"] + [f"u{u},i{u % 5},-1" for u in range(9)])
    _table(w / "nanw", ["user_id,item_id,weight"] + [f"u{u},i{u % 5},nan" for u in range(9)])
    _table(w / "tiny", ["user_id,item_id"] + [f"u{u},i{u % 5}" for u in range(9)])
    _table(w / "oneitem", ["user_id,item_id"] + [f"u{u},i0" for u in range(9)], items=1)
    nan = np.ones((25, 4), np.float32)
    nan[3, 1] = np.nan
    np.save(w / "nan.npy", nan)
    np.save(w / "short.npy", np.ones((7, 4), np.float32))
    np.save(w / "emb.npy", np.random.default_rng(0).standard_normal((25, 4)).astype(np.float32))
    _fake_run(w / "run", str(data))
    _fake_run(w / "damaged", str(data), truncate=True)
    (w / "badjson").mkdir()
    (w / "badjson" / "model.safetensors").write_bytes(b"x")
    (w / "badjson" / "config.json").write_text("{not json")
    _fake_run(w / "otherdata", str(data), fingerprint="0123456789abcdef")
    (w / "edited").mkdir()
    np.save(w / "edited" / "centroids.npy", np.eye(3, dtype=np.float32))
    (w / "edited" / "clusterer.json").write_text('{"config": {"spherical": true}}')
    np.save(w / "edited" / "item_cluster.npy", np.array([0, 1, 7]))
    for name in ("diagnostics.json", "meta.json"):
        (w / "edited" / name).write_text("{}")
    (w / "bad.yaml").write_text("lr: [unclosed\n")
    (w / "unknown.yaml").write_text("lerning_rate: 0.1\n")
    (w / "lrword.yaml").write_text("lr: fast\n")
    (w / "lrnan.yaml").write_text("lr: .nan\n")


def _snapshot(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if "__pycache__" in rel:
            continue
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


def _env(w: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(SRC), CLUSTERNEG_CACHE=str(w / "cache"), HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1", COLUMNS="200")
    return env


def _run_case(base: Path, world: Path, case: tuple[str, list[str], int, str]) -> dict:
    name, argv, _, _ = case
    w = base / name
    shutil.copytree(world, w)
    subs = {"{w}": str(w), "{data}": str(w / "data"), "{run}": str(w / "run")}
    args = []
    for a in argv:
        for k, v in subs.items():
            a = a.replace(k, v)
        args.append(a)
    before = _snapshot(w)
    proc = subprocess.run([sys.executable, "-m", "clusterneg.cli", *args], cwd=w,
                          env=_env(w), capture_output=True, text=True, timeout=300)
    return {"code": proc.returncode, "err": proc.stderr, "out": proc.stdout,
            "same": before == _snapshot(w), "before": before, "after": _snapshot(w)}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    base = tmp_path_factory.mktemp("bad_inputs")
    world = base / "_world"
    _build_world(world)
    workers = 6  # the cases mostly wait on imports; a few at a time keeps the wall time low
    with ThreadPoolExecutor(workers) as pool:
        futures = {c[0]: pool.submit(_run_case, base, world, c) for c in CASES}
        return {name: f.result() for name, f in futures.items()}


def test_the_table_has_at_least_60_distinct_cases() -> None:
    assert len(CASES) >= 60
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case: tuple[str, list[str], int, str], results: dict[str, dict]) -> None:
    name, _, code, word = case
    r = results[name]
    lines = r["err"].splitlines()
    assert r["code"] == code, r["err"]
    assert len(lines) == 1, r["err"]
    assert "Traceback" not in r["err"] and "Traceback" not in r["out"]
    assert word.lower() in lines[0].lower(), lines[0]
    assert r["same"], {k for k in set(r["before"]) | set(r["after"])
                       if r["before"].get(k) != r["after"].get(k)}


def test_the_users_folder_and_the_dataset_survive_out(results: dict[str, dict]) -> None:
    for name, kept in (("train-out-user-folder", "thesis/chapter1.tex"),
                       ("train-out-dataset", "data/interactions.csv"),
                       ("compare-out-dataset", "data/items.csv")):
        assert kept in results[name]["after"]
        assert results[name]["after"][kept] == results[name]["before"][kept]


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "clusterneg.cli", "--debug", "train",
                           "--lr", "nan", "--out", str(tmp_path / "o")], cwd=tmp_path,
                          env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_version_is_one_line_exit_0(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "clusterneg.cli", "--version"], cwd=tmp_path,
                          env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("clusterneg ")
    assert len(proc.stdout.splitlines()) == 1 and proc.stderr == ""


def test_ctrl_c_exits_130_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    """Ctrl-C during training: exit 130, one line (after the epoch lines), no run written."""
    data = write_synthetic(tmp_path / "data", n_users=200, n_items=300, per_user=30)
    before = _snapshot(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "clusterneg.cli", "train", "--dataset", str(data),
         "--encoder", "none", "--epochs", "100000", "--patience", "100000",
         "--batch-size", "16", "--out", str(tmp_path / "out")], cwd=tmp_path,
        env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a terminal's Ctrl-C: SIGINT at its default even when pytest runs in the background
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stderr is not None
    first = proc.stderr.readline()  # the first epoch line: well into training
    assert "epoch 1/" in first, first
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    lines = [ln for ln in rest.splitlines() if " epoch " not in ln]
    assert proc.returncode == 130, rest
    assert len(lines) == 1 and lines[0].startswith("interrupted"), rest
    assert "Traceback" not in rest
    assert _snapshot(tmp_path) == before
