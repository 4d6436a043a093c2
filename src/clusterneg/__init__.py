"""clusterneg: two-tower retrieval with hard negatives from LLM-derived item clusters."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("clusterneg")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
