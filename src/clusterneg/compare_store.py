"""A comparison you can interrupt: one run directory per sampler and seed, results appended
as each run finishes, and ``compare --resume`` skips what is already done (issue 9).

Layout of ``compare --out DIR``::

    DIR/.clusterneg-run          marker (kind "compare"; complete once the report is written)
    DIR/compare.json             the settings; --resume refuses different ones
    DIR/command.yaml             the command's options (``--config`` replays them)
    DIR/tuning/SAMPLER.json      the tuning choice, so a resumed comparison does not re-tune
    DIR/runs/SAMPLER-seedN/      a full run directory (``clusterneg evaluate`` reads it)
    DIR/runs.jsonl               one results row per finished run, in finishing order
    DIR/results.json, results.md, report.html   written at the end

A resumed run is not retrained: its weights are loaded and evaluated again (evaluation is
deterministic), which gives back the per-user numbers the report needs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from clusterneg.errors import ConfigError, DataError
from clusterneg.outputs import (
    _OLD_TAG,
    atomic_write_json,
    atomic_write_text,
    check_output,
    is_run_dir,
    read_marker,
    write_marker,
)

SETTINGS = "compare.json"
ROWS = "runs.jsonl"


class RunStore:
    """The run directories and results rows of one ``compare --out DIR``.

    Args:
        root: the output directory.
        settings: what the comparison runs (JSON-able); a resume must match it exactly.
        resume: continue a comparison found at ``root``.
        overwrite: replace a comparison found at ``root`` (the old one is kept aside until
            the new one is complete).
    """

    def __init__(self, root: Path, settings: dict[str, Any], resume: bool = False,
                 overwrite: bool = False) -> None:
        self.root = Path(root)
        self.settings = json.loads(json.dumps(settings, default=str))
        self.resume = resume
        self.overwrite = overwrite
        check_output(self.root, overwrite=overwrite, resume=resume)
        if resume and is_run_dir(self.root):
            self._check_resumable()

    def _check_resumable(self) -> None:
        if read_marker(self.root).get("kind") != "compare":
            raise ConfigError(f"--resume {self.root}: not a compare output directory")
        try:
            saved = json.loads((self.root / SETTINGS).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise DataError(self.root / SETTINGS, "missing or damaged; cannot resume") from None
        if saved != self.settings:
            diff = sorted(k for k in set(saved) | set(self.settings)
                          if saved.get(k) != self.settings.get(k))
            raise ConfigError(f"--resume {self.root}: settings differ from the interrupted "
                              f"comparison ({', '.join(diff)}); rerun with the same options")

    def start(self, command_yaml: str) -> None:
        """Create (or reopen) the directory; called once the options are known to be good."""
        if self.resume and is_run_dir(self.root):
            return
        if is_run_dir(self.root):  # --overwrite: keep the old one aside until we finish
            aside = self.root.parent / f".{self.root.name}{_OLD_TAG}"
            if aside.exists():
                shutil.rmtree(aside)
            self.root.rename(aside)
        self.root.mkdir(parents=True, exist_ok=True)
        write_marker(self.root, "compare", complete=False)
        atomic_write_json(self.root / SETTINGS, self.settings)
        atomic_write_text(self.root / "command.yaml", command_yaml)

    def finish(self) -> None:
        """Mark the comparison complete and drop an old one kept aside by ``--overwrite``."""
        write_marker(self.root, "compare", complete=True)
        aside = self.root.parent / f".{self.root.name}{_OLD_TAG}"
        if is_run_dir(aside):
            shutil.rmtree(aside)

    # -- tuning ---------------------------------------------------------------------------

    def tuning(self, sampler: str) -> dict[str, Any] | None:
        path = self.root / "tuning" / f"{sampler}.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def save_tuning(self, sampler: str, record: dict[str, Any]) -> None:
        atomic_write_json(self.root / "tuning" / f"{sampler}.json", record)

    # -- runs -----------------------------------------------------------------------------

    def run_dir(self, sampler: str, seed: int) -> Path:
        return self.root / "runs" / f"{sampler}-seed{seed}"

    def rows(self) -> list[dict[str, Any]]:
        """The results rows of the finished runs, in finishing order."""
        path = self.root / ROWS
        if not path.is_file():
            return []
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                rows.append(json.loads(line))
            except ValueError:
                raise DataError(path, "damaged results row", line=n) from None
        return rows

    def finished(self, sampler: str, seed: int) -> dict[str, Any] | None:
        """The row of a finished run (its directory complete), or None."""
        if not is_run_dir(self.run_dir(sampler, seed)):
            return None
        for row in self.rows():
            if row["sampler"] == sampler and row["seed"] == seed:
                return row
        return None

    def add_row(self, sampler: str, seed: int, row: dict[str, Any]) -> None:
        """Record a run whose directory is written (``compare`` writes it first, so a kill in
        between redoes the run): it counts as finished from now on."""
        rows = [r for r in self.rows() if (r["sampler"], r["seed"]) != (sampler, seed)]
        text = "".join(json.dumps(r, default=_plain, allow_nan=True) + "\n"
                       for r in [*rows, row])
        atomic_write_text(self.root / ROWS, text)

    def load(self, sampler: str, seed: int, prep: Any) -> Any:
        """A finished run as a :class:`~clusterneg.experiment.RunResult`, re-evaluated."""
        from clusterneg.experiment import RunResult, evaluate_model
        from clusterneg.runs import load_run
        from clusterneg.train.checkpoint import METRICS

        run = self.run_dir(sampler, seed)
        model, _, config = load_run(run, prep)
        metrics = json.loads((run / METRICS).read_text(encoding="utf-8"))
        ev = evaluate_model(model, prep, "test")
        config = {k: v for k, v in config.items() if k not in ("provenance", "weights_sha256")}
        return RunResult(metrics=ev.summary, exposure=ev.exposure, valid=metrics["valid"],
                         train=metrics["train"], config=config, per_user=ev.per_user,
                         topk=ev.topk, eval_users=ev.users, buckets=ev.buckets)


def _plain(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
