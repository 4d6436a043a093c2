"""``results.md``: the comparison table a person reads first, with the verdict on top.

Two tables over the headline metrics: mean ± std over seeds per sampler, then the change
relative to ``in-batch`` with the paired bootstrap 95% interval over users (relative to the
baseline's mean) and a check mark where that interval excludes 0 (the difference is real).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clusterneg.report.summary import (
    HEADLINE,
    SEEDS_NOTE,
    Comparison,
    best_vs_rows,
    beyond_reference_sentence,
    fmt_ci,
    fmt_pct,
    fmt_value,
    headroom,
    headroom_rows,
    headroom_sentence,
    metric_label,
    provenance_rows,
    training_curves,
    tuning_rows,
    verdict,
)

REAL_MARK = "✓"


def _row(cells: Sequence[str]) -> str:
    """A Markdown table row; pipes inside cells are escaped."""
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Header, separator and rows; first column left-aligned, the others right-aligned."""
    sep = [":---"] + ["---:"] * (len(header) - 1)
    return [_row(header), "|" + "|".join(sep) + "|", *(_row(r) for r in rows)]


def mean_std_cell(comp: Comparison, sampler: str, metric: str) -> str:
    """``0.2905 ± 0.0031``; a single seed shows its value alone (no fake ``± 0``); ``—``
    when the sampler has no such metric."""
    stats = comp.summary.get(sampler, {}).get(metric)
    if not stats:
        return "—"
    if stats.get("n", 2) < 2:
        return fmt_value(metric, stats["mean"])
    return f"{fmt_value(metric, stats['mean'])} ± {fmt_value(metric, stats['std'])}"


def change_cell(comp: Comparison, sampler: str, metric: str) -> str:
    """``+4.3% [+1.1%, +7.2%] ✓``: change vs baseline, its interval, real or not."""
    if sampler == comp.baseline:
        return "baseline"
    rel = fmt_pct(comp.relative.get(sampler, {}).get(metric))
    test = comp.significance.get(sampler, {}).get(metric)
    if not test:
        return rel
    ci = fmt_ci(test["rel_ci_low"], test["rel_ci_high"])
    return f"{rel} {ci}" + (f" {REAL_MARK}" if test["real"] else "")


def data_facts(results: Mapping[str, Any], comp: Comparison) -> str:
    """``split leave-last-out, n_users 943, ...; 3 seed(s) per sampler`` (what is known)."""
    keys = ("split", "n_users", "n_items", "n_train", "n_test")
    facts = ", ".join(f"{k} {results[k]}" for k in keys if k in results)
    seeds = f"{comp.n_seeds()} seed(s) per sampler"
    return f"{facts}; {seeds}" if facts else seeds


def _header_lines(results: Mapping[str, Any], comp: Comparison) -> list[str]:
    """Title, data description and the verdict."""
    return [
        f"# clusterneg compare: {results.get('dataset', 'unknown dataset')}",
        "",
        f"{data_facts(results, comp)}; all items ranked (no sampling).",
        "",
        f"**Verdict.** {verdict(comp)}",
        "",
    ]


def render_markdown(
    results: Mapping[str, Any], comp: Comparison, metrics: Sequence[str] = HEADLINE
) -> str:
    """The full ``results.md`` text.

    Args:
        results: ``results.json`` content (dataset facts are read from it).
        comp: means, changes and tests (see :func:`clusterneg.report.compare_runs`).
        metrics: table columns.

    Example:
        >>> from clusterneg.report.summary import compare_runs
        >>> runs = [{"sampler": s, "metrics": {"hr@50": v}}
        ...         for s, v in (("in-batch", 0.2), ("cluster-goobs", 0.3))]
        >>> "| cluster-goobs | 0.3000 |" in render_markdown({"runs": runs},
        ...                                                    compare_runs({"runs": runs}))
        True
    """
    header = ["sampler", *(metric_label(m) for m in metrics)]
    means = [[s, *(mean_std_cell(comp, s, m) for m in metrics)] for s in comp.samplers]
    changes = [[s, *(change_cell(comp, s, m) for m in metrics)] for s in comp.samplers]
    lines = _header_lines(results, comp)
    spread = "Mean ± std over seeds" if comp.n_seeds() > 1 else "One seed (no spread)"
    lines += [f"## {spread}", "", *_table(header, means), ""]
    lines += [f"## Change relative to {comp.baseline}", "", *_table(header, changes), ""]
    lines += [
        f"Brackets: paired bootstrap 95% interval over users of the difference from "
        f"{comp.baseline} (per-user values averaged over seeds), relative to {comp.baseline}'s "
        f"mean; {REAL_MARK} = the interval excludes 0, so the difference is real. Exposure "
        f"and throughput have no per-user value and show the change only.",
        "",
    ]
    if not comp.significance:
        lines += ["No per-user arrays were given, so no difference was tested.", ""]
    lines += best_vs_lines(comp)
    lines += headroom_lines(comp)
    lines += tuning_lines(results)
    lines += how_made_markdown(results)
    return "\n".join(lines)

def best_vs_lines(comp: Comparison) -> list[str]:
    """The best sampler against each other one (empty without per-user arrays)."""
    title, rows = best_vs_rows(comp)
    if not rows:
        return []
    label = metric_label(comp.best_vs["metric"])
    lines = [f"## {title}", "",
             f"| against | {label} of {comp.best_vs['best']} | change | 95% CI over users | "
             "| per seed |",
             "|:---|---:|---:|---:|:---|:---|"]
    return [*lines, *(_row(r) for r in rows), "", SEEDS_NOTE, ""]


def headroom_lines(comp: Comparison, metric: str = "hr@50") -> list[str]:
    """The ``results.md`` section (empty when the comparison has no ``full`` run)."""
    h = headroom(comp, metric)
    if h is None:
        return []
    lines = [f"## Headroom over {comp.baseline} ({metric_label(metric)})", "",
             headroom_sentence(h, comp.baseline), "",
             f"| sampler | gain over {comp.baseline} | headroom | share closed | "
             f"vs {h['reference']} (95% CI over users) |",
             "|:---|---:|---:|---:|---:|"]
    lines += [_row(cells) for cells in headroom_rows(h)]
    beyond = beyond_reference_sentence(h)
    return [*lines, *(["", beyond] if beyond else []), ""]


TUNING_HEADER = ("sampler", "trials", "temperature", "learning rate", "options",
                 "validation: chosen / defaults")
TUNING_NOTE = ("Each sampler's trials drew from the same temperature and learning-rate grid "
               "plus its own options' grid, the same number for every sampler; the trial with "
               "the best validation metric (seed 0) trained every seed. The test split was "
               "never used to choose.")


def tuning_lines(results: Mapping[str, Any]) -> list[str]:
    """The ``results.md`` section (empty when nothing was tuned)."""
    rows = tuning_rows(results)
    if not rows:
        return []
    return ["## Tuning (validation)", "", TUNING_NOTE, "", *_table(TUNING_HEADER, rows), ""]


def how_made_markdown(results: Mapping[str, Any]) -> list[str]:
    """Markdown lines of the section (empty when the results carry no provenance)."""
    prov = results.get("provenance")
    if not prov:
        return []
    lines = ["## How this was made", "", "| | |", "|:---|:---|"]
    lines += [f"| {k} | `{v}` |" for k, v in provenance_rows(prov, results)]
    curves = training_curves(results, "valid")
    if curves:
        lines += ["", "Validation curve (first seed, per epoch): " + "; ".join(
            f"{s} " + " ".join(f"{v:.4f}" for v in c.values()) for s, c in curves.items())]
    return [*lines, ""]
