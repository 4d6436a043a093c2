"""A comparison you can interrupt: one run directory per sampler and seed, results appended
as each run finishes, and ``compare --resume`` skips what is already done (issue 9).

Layout of ``compare --out DIR``::

    DIR/.clusterneg-run          marker (kind "compare"; complete once the report is written)
    DIR/compare.json             the settings; --resume refuses different ones, except more
                                 (or other) seeds and samplers: those extend the comparison
    DIR/command.yaml             the command's options (``--config`` replays them)
    DIR/tuning/SAMPLER.json      the tuning choice, so a resumed comparison does not re-tune
    DIR/tuning/runs/             the tuning trials while they train (the best becomes seed 0's)
    DIR/runs/SAMPLER-seedN/      a full run directory (``clusterneg evaluate`` reads it)
    DIR/runs.jsonl               one results row per finished run, in finishing order
    DIR/results.json, results.md, report.html   written at the end

A resumed run is not retrained: its weights are loaded and evaluated again (evaluation is
deterministic), which gives back the per-user numbers the report needs.
"""

from __future__ import annotations

import contextlib
import json
import logging
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

log = logging.getLogger(__name__)

SETTINGS = "compare.json"
ROWS = "runs.jsonl"
#: settings a resume may change: each run is one (sampler, seed), so more seeds or another
#: sampler add runs beside the finished ones without touching them
EXTENDABLE = ("seeds", "samplers")


class RunStore:
    """The run directories and results rows of one ``compare --out DIR``.

    Args:
        root: the output directory.
        settings: what the comparison runs (JSON-able); a resume must match it exactly.
        resume: continue a comparison found at ``root``.
        overwrite: replace a comparison found at ``root`` (the old one is kept aside until
            the new one is complete).
        defaults: the settings of a default comparison; a key that a comparison saved by an
            older version lacks is read as its default there, so it can still be resumed.
    """

    def __init__(self, root: Path, settings: dict[str, Any], resume: bool = False,
                 overwrite: bool = False, defaults: dict[str, Any] | None = None) -> None:
        self.root = Path(root)
        self.settings = json.loads(json.dumps(settings, default=str))
        self.defaults = json.loads(json.dumps(defaults or {}, default=str))
        self.extended: list[str] = []  # what a resume changes ("seeds 1 -> 3")
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
        saved = _fill(saved, self.defaults)
        diff = _differences(saved, self.settings)
        if "compare.sampler_options" in diff and _options_of_new_samplers_only(
                saved["compare"], self.settings["compare"]):
            diff.remove("compare.sampler_options")  # an added sampler brings its options
        fixed = [k for k in diff if k.removeprefix("compare.") not in EXTENDABLE]
        if fixed:
            raise ConfigError(f"--resume {self.root}: settings differ from the interrupted "
                              f"comparison ({', '.join(fixed)}); rerun with the same options "
                              f"(only {' and '.join('--' + k for k in EXTENDABLE)} may change)")
        self.extended = [f"{k.removeprefix('compare.')} {saved['compare'].get(k[8:])} -> "
                         f"{self.settings['compare'].get(k[8:])}" for k in diff]

    def start(self, command_yaml: str) -> None:
        """Create (or reopen) the directory; called once the options are known to be good."""
        if self.resume and is_run_dir(self.root):
            # more seeds or samplers: the directory now describes the extended comparison,
            # unfinished until its report is written again
            for change in self.extended:
                log.info("resume extends the comparison: %s", change)
            write_marker(self.root, "compare", complete=False)
            atomic_write_json(self.root / SETTINGS, self.settings)
            atomic_write_text(self.root / "command.yaml", command_yaml)
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

    def trial_dir(self, sampler: str, index: int) -> Path:
        """Where tuning trial ``index`` of ``sampler`` is written while tuning runs."""
        return self.root / "tuning" / "runs" / f"{sampler}-trial{index}"

    def adopt_trial(self, sampler: str, trial: Path | None) -> None:
        """Make the chosen trial's directory the sampler's seed-0 run directory (the trial
        trained with seed 0 and the comparison's settings: it is that run). A seed-0 run
        already finished is kept and the trial dropped."""
        if trial is None or not is_run_dir(trial):
            return
        dest = self.run_dir(sampler, 0)
        if self.finished(sampler, 0) is not None:
            shutil.rmtree(trial)
        else:
            if dest.exists():  # a seed-0 run killed before it finished: inside this directory
                shutil.rmtree(dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            trial.rename(dest)
        with contextlib.suppress(OSError):  # the last sampler's: tuning/runs is empty now
            trial.parent.rmdir()

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


def _fill(saved: Any, defaults: Any) -> Any:
    """``saved`` with every key it lacks (at any depth) taken from ``defaults``.

    Example:
        >>> _fill({"train": {"lr": 0.005}}, {"train": {"lr": 0.002, "optimizer": "adam"}})
        {'train': {'lr': 0.005, 'optimizer': 'adam'}}
    """
    if not (isinstance(saved, dict) and isinstance(defaults, dict)):
        return saved
    return {**{k: _fill(v, defaults.get(k)) for k, v in saved.items()},
            **{k: v for k, v in defaults.items() if k not in saved}}


def _options_of_new_samplers_only(saved: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether the sampler options differ only for samplers the resume adds (a new spec
    such as ``cluster-goobs@cs`` comes with its own ``-o`` options; a finished sampler's
    options must not change).

    Example:
        >>> _options_of_new_samplers_only(
        ...     {"samplers": ["in-batch"], "sampler_options": {}},
        ...     {"samplers": ["in-batch", "goobs@cs"],
        ...      "sampler_options": {"goobs@cs": {"shared": True}}})
        True
        >>> _options_of_new_samplers_only(
        ...     {"samplers": ["goobs"], "sampler_options": {}},
        ...     {"samplers": ["goobs"], "sampler_options": {"goobs": {"shared": True}}})
        False
    """
    old, new = saved.get("sampler_options") or {}, now.get("sampler_options") or {}
    kept = set(saved.get("samplers") or [])
    return all(old.get(spec) == new.get(spec) for spec in set(old) | set(new)
               if spec in kept or spec not in (now.get("samplers") or []))


def _differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between ``a`` and ``b``, down to the
    ``compare`` section's fields.

    Example:
        >>> _differences({"compare": {"seeds": 1, "budget": 1}, "experiment": {"k": 1}},
        ...              {"compare": {"seeds": 3, "budget": 1}, "experiment": {"k": 2}})
        ['compare.seeds', 'experiment']
    """
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if x == y:
            continue
        if key == "compare" and not prefix and isinstance(x, dict) and isinstance(y, dict):
            out += _differences(x, y, "compare.")
        else:
            out.append(prefix + key)
    return out
