"""The report's "How this was made" section: the command, the settings, the versions and
the training curves, so a reader can judge and rerun the comparison (issue 9, item 7).

Reads only ``results.json``: ``provenance`` (see :mod:`clusterneg.provenance`),
``experiment``, and each run's ``config`` and ``train.curve``.

Example:
    >>> runs = [{"sampler": "in-batch", "seed": 0, "train": {"curve": [
    ...     {"epoch": 0, "loss": 2.0, "valid": 0.1}, {"epoch": 1, "loss": 1.5, "valid": 0.2}]}}]
    >>> training_curves({"runs": runs}, "valid")
    {'in-batch': {1: 0.1, 2: 0.2}}
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any


def training_curves(results: Mapping[str, Any], key: str) -> dict[str, dict[int, float]]:
    """sampler -> {epoch (1-based): value} for the first seed of each sampler."""
    out: dict[str, dict[int, float]] = {}
    for run in results.get("runs") or []:
        curve = (run.get("train") or {}).get("curve") or []
        if run.get("sampler") in out or not curve:
            continue
        points = {int(p["epoch"]) + 1: float(p[key]) for p in curve
                  if p.get(key) is not None}
        if points:
            out[run["sampler"]] = points
    return out


def settings(results: Mapping[str, Any]) -> dict[str, Any]:
    """The settings shared by the runs: experiment, model, and training (first run)."""
    runs = results.get("runs") or []
    config = (runs[0].get("config") or {}) if runs else {}
    train = {k: v for k, v in (config.get("train") or {}).items()
             if k not in ("sampler", "sampler_options", "seed")}
    return {"experiment": results.get("experiment") or config.get("experiment") or {},
            "model": config.get("model") or {}, "train": train}


def _rows(prov: Mapping[str, Any], results: Mapping[str, Any]) -> list[tuple[str, str]]:
    libs = ", ".join(f"{k} {v}" for k, v in (prov.get("libraries") or {}).items())
    rows = [("command", " ".join(prov.get("argv") or []) or "-"),
            ("clusterneg", f"{prov.get('clusterneg', '-')} (git {prov.get('git_commit') or '-'})"),
            ("libraries", libs or "-"), ("platform", str(prov.get("platform", "-"))),
            ("dataset", f"{results.get('dataset', '-')} (fingerprint "
                        f"{prov.get('dataset_fingerprint', '-')})"),
            ("clusters (resolved k)", str(prov.get("n_clusters", results.get("n_clusters")))),
            ("threads / device", f"{prov.get('threads', '-')} / {prov.get('device', '-')}")]
    for part, values in settings(results).items():
        rows.append((part, json.dumps(values, sort_keys=True, default=str)))
    return rows


def how_made_markdown(results: Mapping[str, Any]) -> list[str]:
    """Markdown lines of the section (empty when the results carry no provenance)."""
    prov = results.get("provenance")
    if not prov:
        return []
    lines = ["## How this was made", "", "| | |", "|:---|:---|"]
    lines += [f"| {k} | `{v}` |" for k, v in _rows(prov, results)]
    curves = training_curves(results, "valid")
    if curves:
        lines += ["", "Validation curve (first seed, per epoch): " + "; ".join(
            f"{s} " + " ".join(f"{v:.4f}" for v in c.values()) for s, c in curves.items())]
    return [*lines, ""]


def how_made_html(results: Mapping[str, Any]) -> str:
    """The HTML section, with the validation and loss curves as figures."""
    prov = results.get("provenance")
    if not prov:
        return ""
    from clusterneg.report import plots

    rows = "".join(f"<tr><th>{html.escape(k)}</th><td><code>{html.escape(v)}</code></td></tr>"
                   for k, v in _rows(prov, results))
    figs = []
    for key, label in (("valid", "validation recall@50"), ("loss", "training loss")):
        curves = training_curves(results, key)
        if curves:
            uri = plots.curves_plot(curves, label)
            figs.append(f'<figure><img alt="{label} per epoch" src="{uri}">'
                        f"<figcaption>{label} per epoch (first seed; x axis: epoch)"
                        "</figcaption></figure>")
    return (f'<section id="how-made"><h2>How this was made</h2><table>{rows}</table>'
            f'<div class="figs">{"".join(figs)}</div></section>')
