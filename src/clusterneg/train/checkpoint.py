"""Atomic run directories: weights as safetensors, config and metrics as JSON.

A run directory is built under a hidden name beside its destination and swapped into place
(:func:`clusterneg.outputs.write_run_dir`), so a crash never leaves a half-written checkpoint
and an existing run is replaced only when asked (DESIGN.md, "Real time and scale").
Nothing is ever unpickled: tensors go through safetensors, everything else through JSON.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load, save

from clusterneg.errors import DataError
from clusterneg.outputs import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    write_run_dir,
)

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
METRICS = "metrics.json"


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (:func:`clusterneg.outputs.atomic_write_json`)."""
    atomic_write_json(path, obj)


def save_checkpoint(
    dest: Path, state: dict[str, torch.Tensor], config: dict[str, Any], metrics: dict[str, Any],
    extra_tensors: dict[str, torch.Tensor] | None = None, overwrite: bool = False,
    extra_files: dict[str, str] | None = None,
) -> Path:
    """Write a run directory: ``model.safetensors`` (its SHA-256 in ``config.json`` under
    ``"weights_sha256"``), ``config.json``, ``metrics.json`` and ``extra_files`` (name: text).
    """

    def fill(tmp: Path) -> None:
        tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
        for k, v in (extra_tensors or {}).items():
            tensors[f"extra.{k}"] = v.detach().cpu().contiguous()
        blob = save(tensors)
        atomic_write_bytes(tmp / WEIGHTS, blob)
        write_json(tmp / CONFIG, config | {"weights_sha256": hashlib.sha256(blob).hexdigest()})
        write_json(tmp / METRICS, metrics)
        for name, text in (extra_files or {}).items():
            atomic_write_text(tmp / name, text)

    return write_run_dir(dest, fill, kind="train", overwrite=overwrite)


def save_run(dest: Path, result: Any, model: torch.nn.Module, provenance: dict[str, Any],
             overwrite: bool = False, extra_files: dict[str, str] | None = None) -> Path:
    """Save a trained :class:`~clusterneg.experiment.RunResult` with its provenance block."""
    metrics = {"test": result.metrics, "exposure": result.exposure, "valid": result.valid,
               "train": result.train}
    return save_checkpoint(dest, model.state_dict(), result.config | {"provenance": provenance},
                           metrics, overwrite=overwrite, extra_files=extra_files)


def load_checkpoint(run: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """Read a run directory back: (model state + ``extra.*`` tensors, config, metrics).

    Raises:
        DataError: a missing or damaged file (bad JSON, weights whose checksum differs from
            the one recorded when the run was written, unreadable safetensors).
    """
    run = Path(run)
    if not run.is_dir():
        raise DataError(run, "not a directory (expected a run written by train/compare)")
    for name in (WEIGHTS, CONFIG):
        if not (run / name).is_file():
            raise DataError(run, f"not a clusterneg run directory: {name} is missing")
    config = _read_json(run / CONFIG)
    metrics = _read_json(run / METRICS) if (run / METRICS).exists() else {}
    blob = (run / WEIGHTS).read_bytes()
    expected = config.get("weights_sha256")
    if expected is not None and hashlib.sha256(blob).hexdigest() != expected:
        raise DataError(run / WEIGHTS, "damaged: its SHA-256 differs from the one recorded in "
                                       "config.json (truncated or edited)")
    try:
        state = load(blob)
    except Exception as exc:  # safetensors raises its own error types for a bad header
        raise DataError(run / WEIGHTS, f"unreadable safetensors file ({exc})") from None
    return state, config, metrics


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DataError(path, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise DataError(path, f"invalid JSON: {exc.msg}", line=exc.lineno) from None
    if not isinstance(data, dict):
        raise DataError(path, f"expected a JSON object, got {type(data).__name__}")
    return data
