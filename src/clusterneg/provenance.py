"""Provenance: how a run or a comparison was made, recorded beside its numbers.

Every run directory and every ``results.json`` carries a block with the package version, the
git commit of the source tree (when it is one), the command line, library versions, the
resolved number of clusters, threads, device and a fingerprint of the dataset (issue 9, "say
what happened"). ``evaluate`` compares the fingerprint to refuse a different dataset.

Example:
    >>> import numpy as np
    >>> a = fingerprint_arrays(np.array(["u1", "u2"]), np.array([0, 1]))
    >>> a == fingerprint_arrays(np.array(["u1", "u2"]), np.array([0, 1])), len(a)
    (True, 16)
    >>> a == fingerprint_arrays(np.array(["u1", "u2"]), np.array([1, 0]))
    False
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

LIBRARIES = ("torch", "numpy", "faiss-cpu", "pyarrow", "typer", "safetensors",
             "sentence-transformers", "transformers")


def fingerprint_arrays(*arrays: np.ndarray) -> str:
    """16 hex digits of SHA-256 over the arrays' dtypes, shapes and values."""
    h = hashlib.sha256()
    for arr in arrays:
        arr = np.ascontiguousarray(arr)
        if arr.dtype.kind in "OUS":
            arr = np.asarray([str(x) for x in arr.reshape(-1)], dtype=str)
            data = "\x1f".join(arr.tolist()).encode("utf-8")
        else:
            data = arr.tobytes()
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(data)
    return h.hexdigest()[:16]


def dataset_fingerprint(ds: Any) -> str:
    """Fingerprint of a :class:`~clusterneg.data.dataset.Dataset`: user ids, item ids, and
    every interaction (user, item, order, weight) in its stored order."""
    inter = ds.interactions
    return fingerprint_arrays(ds.user_ids, ds.catalog.item_ids, inter.user, inter.item,
                              inter.order, inter.weight)


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the source tree clusterneg is imported from, or None."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", "."],
                           capture_output=True, text=True, timeout=5, check=False)
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape the numbers."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def provenance(**resolved: Any) -> dict[str, Any]:
    """The provenance block: versions, commit, argv, plus what the caller resolved
    (``n_clusters``, ``threads``, ``device``, ``dataset_fingerprint``...)."""
    from clusterneg import __version__

    return {"clusterneg": __version__, "git_commit": git_commit(),
            "argv": ["clusterneg", *sys.argv[1:]], "libraries": library_versions(),
            "platform": platform.platform(), **resolved}


def run_provenance(prep: Any, threads: int, device: str) -> dict[str, Any]:
    """:func:`provenance` for a prepared experiment (``clusterneg.experiment.Prepared``)."""
    import torch

    return provenance(dataset=prep.dataset.name,
                      dataset_fingerprint=dataset_fingerprint(prep.dataset),
                      n_clusters=int(prep.n_clusters), threads=threads or torch.get_num_threads(),
                      device=device)
