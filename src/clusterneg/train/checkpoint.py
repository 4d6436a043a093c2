"""Atomic run directories: weights as safetensors, config and metrics as JSON.

A run directory is written under a temporary name beside its destination and renamed into
place, so a crash never leaves a half-written checkpoint (DESIGN.md, "Real time and scale").
Nothing is ever unpickled: tensors go through safetensors, everything else through JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from clusterneg.errors import DataError

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
METRICS = "metrics.json"


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file in the same directory, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, sort_keys=False, default=_json_default)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_run_dir(dest: Path, fill: Callable[[Path], None]) -> Path:
    """Create ``dest`` atomically: ``fill(tmp_dir)`` writes the files, then one rename.

    An existing ``dest`` is replaced only after the new one is complete.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        fill(tmp)
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def save_checkpoint(
    dest: Path, state: dict[str, torch.Tensor], config: dict[str, Any], metrics: dict[str, Any],
    extra_tensors: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write a run directory: ``model.safetensors``, ``config.json``, ``metrics.json``."""

    def fill(tmp: Path) -> None:
        tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
        for k, v in (extra_tensors or {}).items():
            tensors[f"extra.{k}"] = v.detach().cpu().contiguous()
        save_file(tensors, str(tmp / WEIGHTS))
        write_json(tmp / CONFIG, config)
        write_json(tmp / METRICS, metrics)

    return write_run_dir(dest, fill)


def load_checkpoint(run: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """Read a run directory back: (model state + ``extra.*`` tensors, config, metrics)."""
    run = Path(run)
    for name in (WEIGHTS, CONFIG):
        if not (run / name).is_file():
            raise DataError(run, f"not a clusterneg run directory: {name} is missing")
    try:
        config = json.loads((run / CONFIG).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(run / CONFIG, f"invalid JSON: {exc.msg}", line=exc.lineno) from None
    metrics_path = run / METRICS
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.exists() else {}
    return load_file(str(run / WEIGHTS)), config, metrics
