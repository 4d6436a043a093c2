"""How much of a sampler's measured gain is the choice of the early-stopping epoch?

Two ``compare`` result files whose runs differ only in the users they validate on
(``--valid-users 10000`` against all users) hold, for each sampler configuration and seed,
the SAME training trajectory: validation only picks the epoch whose model is kept (and when
to stop). This script matches their runs (same sampler options, optimiser settings and
seed), checks that the trajectories are identical (the per-epoch training losses equal to
the last digit), and lists for each run the epoch each validation set chose and the test
HR@50 of that epoch's model. Where both chose the same epoch the test numbers must be
identical; where they differ, the difference is what the choice of epoch alone moves the
test metric: the selection noise a comparison carries on top of the seed noise.

It also gives each sampler's gain over in-batch at the validation PEAK (the best epoch's
validation HR@50, paired by seed), which does not depend on which epoch the test saw.

    PYTHONPATH=src .venv/bin/python bench/selection_noise.py --tag selection_noise_a3 \\
        --a 10k=bench/results/compare/amazon-3cat-fast-lr5-3seed \\
        --b all=bench/results/compare/amazon-3cat-lazy-lr5-3seed

Writes ``bench/results/<tag>.json`` and ``bench/results/<tag>.md``; reads only committed
result files (no model is loaded, nothing is trained).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from clusterneg.outputs import atomic_write_text

OUT = Path(__file__).resolve().parent / "results"
METRIC = "hr@50"
#: run settings that do not change what is trained
IGNORED = ("threads", "device")


def _key(run: dict[str, Any]) -> str:
    """What makes two runs the same training: the sampler (name and options), the seed, the
    optimiser and model settings; not the ``@label`` a comparison gave it, the threads or the
    device."""
    cfg = run["config"]
    train = {k: v for k, v in cfg["train"].items() if k not in IGNORED}
    return json.dumps({"train": train, "model": cfg["model"]}, sort_keys=True)


def _valid(point: Any) -> float:
    return float(point if isinstance(point, (int, float)) else point[METRIC])


def _runs(path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    doc = json.loads((path / "results.json").read_text())
    return {_key(r): r for r in doc["runs"]}, doc["experiment"]


def analyse(a: tuple[str, Path], b: tuple[str, Path]) -> dict[str, Any]:
    """Match the runs of two result directories and compare their epoch choices."""
    (la, pa), (lb, pb) = a, b
    ra, ea = _runs(pa)
    rb, eb = _runs(pb)
    differs = sorted(k for k in set(ea) | set(eb) if ea.get(k) != eb.get(k))
    rows = []
    for key in sorted(set(ra) & set(rb), key=lambda k: (ra[k]["sampler"], ra[k]["seed"])):
        x, y = ra[key], rb[key]
        lx = [c["loss"] for c in x["train"]["curve"]]
        ly = [c["loss"] for c in y["train"]["curve"]]
        n = min(len(lx), len(ly))
        train = x["config"]["train"]
        rows.append({
            "sampler": train["sampler"], "label_a": x["sampler"], "label_b": y["sampler"],
            "seed": int(train["seed"]), "options": train["sampler_options"],
            "same_trajectory": lx[:n] == ly[:n], "epochs_compared": n,
            "best_epoch": {la: x["train"]["best_epoch"], lb: y["train"]["best_epoch"]},
            "test": {la: x["metrics"][METRIC], lb: y["metrics"][METRIC]},
            "valid_peak": {la: max(_valid(c["valid"]) for c in x["train"]["curve"]),
                           lb: max(_valid(c["valid"]) for c in y["train"]["curve"])},
        })
    same = [r for r in rows if r["best_epoch"][la] == r["best_epoch"][lb]]
    moved = [r for r in rows if r["best_epoch"][la] != r["best_epoch"][lb]]
    shifts = [r["test"][lb] / r["test"][la] - 1 for r in moved]
    return {
        "a": {"label": la, "dir": str(pa)}, "b": {"label": lb, "dir": str(pb)},
        "experiment_differs_in": differs, "metric": METRIC, "runs": rows,
        "same_epoch_identical_test": all(r["test"][la] == r["test"][lb] for r in same),
        "n_same_epoch": len(same), "n_moved": len(moved),
        "moved_test_shift": shifts,
        "peak_gain": {lab: _peak_gain(rows, lab) for lab in (la, lb)},
    }


def _peak_gain(rows: list[dict[str, Any]], label: str) -> dict[str, list[float]]:
    """Per seed: each configuration's validation peak over in-batch's (same seed)."""
    base = {r["seed"]: r["valid_peak"][label] for r in rows if r["sampler"] == "in-batch"}
    out: dict[str, list[float]] = {}
    for r in rows:
        if r["sampler"] != "in-batch" and r["seed"] in base:
            out.setdefault(r["label_b"], []).append(r["valid_peak"][label] / base[r["seed"]] - 1)
    return out


def table(doc: dict[str, Any]) -> str:
    la, lb = doc["a"]["label"], doc["b"]["label"]
    lines = [
        "# Early-stopping selection noise", "",
        f"`{doc['command']}`", "",
        f"{la}: `{doc['a']['dir']}`; {lb}: `{doc['b']['dir']}`; their experiments differ in "
        f"{', '.join(doc['experiment_differs_in']) or 'nothing'}.", "",
        f"| sampler ({lb} label) | seed | same trajectory | best epoch {la} | best epoch {lb} "
        f"| test {METRIC} {la} | test {METRIC} {lb} | {lb} / {la} - 1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["runs"]:
        ta, tb = r["test"][la], r["test"][lb]
        lines.append(f"| {r['label_b']} | {r['seed']} | {'yes' if r['same_trajectory'] else 'NO'} "
                     f"({r['epochs_compared']} epochs) | {r['best_epoch'][la]} | "
                     f"{r['best_epoch'][lb]} | {ta:.4f} | {tb:.4f} | {100 * (tb / ta - 1):+.1f}% |")
    shifts = ", ".join(f"{100 * s:+.1f}%" for s in doc["moved_test_shift"]) or "none"
    lines += ["", f"Same epoch chosen: {doc['n_same_epoch']} runs, test identical: "
              f"{'yes' if doc['same_epoch_identical_test'] else 'NO'}. Different epoch: "
              f"{doc['n_moved']} runs, test shift {shifts}.", "",
              f"Gain over in-batch at the validation peak (same seed; validated on {la} / {lb}):",
              ""]
    for lab in (la, lb):
        for name, gains in doc["peak_gain"][lab].items():
            lines.append(f"- {lab}, {name}: " + ", ".join(f"{100 * g:+.1f}%" for g in gains))
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tag", required=True)
    ap.add_argument("--a", required=True, help="LABEL=DIR of a compare result")
    ap.add_argument("--b", required=True, help="LABEL=DIR of the other")
    args = ap.parse_args()
    parts = [tuple(s.split("=", 1)) for s in (args.a, args.b)]
    doc = analyse(*((lab, Path(d)) for lab, d in parts))
    doc["command"] = "PYTHONPATH=src .venv/bin/python bench/selection_noise.py " + " ".join(
        sys.argv[1:])
    atomic_write_text(OUT / f"{args.tag}.json", json.dumps(doc, indent=2) + "\n")
    md = table(doc)
    atomic_write_text(OUT / f"{args.tag}.md", md)
    print(md)


if __name__ == "__main__":
    main()
