"""``report.html``: one self-contained page a person reads to judge the comparison.

No external URL anywhere: CSS and a few lines of JavaScript are inline
(:mod:`clusterneg.report.html_assets`), figures are ``data:`` URIs, and a
Content-Security-Policy forbids the browser from fetching anything else. The page renders
what :mod:`clusterneg.report.summary` computes (the same numbers, verdict, headroom and
provenance as ``results.md``) plus the figures and examples of :class:`ReportInputs`: one
function per section, then :func:`render_report` assembles the page and :func:`write_report`
writes it.

After load, the inline script writes ``data-rows`` (results-table body rows),
``data-images`` (figures decoded by the browser) and ``data-ready="1"`` on ``<body>``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from clusterneg.outputs import atomic_write_text
from clusterneg.report import plots
from clusterneg.report.html_assets import CSP, CSS, SCRIPT
from clusterneg.report.inputs import ClusterDiagnostics, ExampleItem, ExampleUser, ReportInputs
from clusterneg.report.markdown import TUNING_HEADER, TUNING_NOTE, data_facts
from clusterneg.report.summary import (
    HEADLINE,
    SEEDS_NOTE,
    Comparison,
    best_vs_rows,
    beyond_reference_sentence,
    compare_runs,
    fmt_ci,
    fmt_pct,
    fmt_value,
    headroom,
    headroom_rows,
    headroom_sentence,
    higher_is_better,
    is_missing,
    metric_label,
    provenance_rows,
    training_curves,
    tuning_rows,
    verdict,
)


def esc(x: object) -> str:
    """HTML-escape any value's text (quotes included, safe in attributes)."""
    return html.escape(str(x), quote=True)


def _missing(what: str) -> str:
    return f'<p class="missing">{esc(what)} not available for this comparison.</p>'


def _figure(uri: str, alt: str, fig_id: str) -> str:
    return f'<img id="{esc(fig_id)}" src="{uri}" alt="{esc(alt)}" width="560">'


def _best(comp: Comparison, metric: str) -> float | None:
    vals = [comp.mean(s, metric) for s in comp.samplers]
    vals = [v for v in vals if not is_missing(v)]
    if len(vals) < 2 or min(vals) == max(vals):
        return None
    return max(vals) if higher_is_better(metric) else min(vals)


def _change(comp: Comparison, sampler: str, metric: str) -> str:
    """Second line of a table cell: change vs baseline, interval, real mark."""
    if sampler == comp.baseline:
        return '<span class="chg">baseline</span>'
    rel = comp.relative.get(sampler, {}).get(metric)
    test = comp.significance.get(sampler, {}).get(metric)
    text = fmt_pct(rel)
    if test:
        text += " " + fmt_ci(test["rel_ci_low"], test["rel_ci_high"])
        if test["real"]:
            return f'<span class="chg real" title="95% CI excludes 0">{esc(text)} ✓</span>'
    return f'<span class="chg">{esc(text)}</span>'


def _cell(comp: Comparison, sampler: str, metric: str, best: float | None) -> str:
    stats = comp.summary.get(sampler, {}).get(metric)
    if not stats:
        return '<td class="num">—</td>'
    from clusterneg.report.markdown import mean_std_cell

    val = mean_std_cell(comp, sampler, metric)  # one seed: the value alone, no fake ± 0
    cls = "num best" if best is not None and stats["mean"] == best else "num"
    change = _change(comp, sampler, metric)
    return f'<td class="{cls}"><span class="v">{esc(val)}</span>{change}</td>'


def results_table(comp: Comparison, metrics: Sequence[str] = HEADLINE) -> str:
    """The results table: mean ± std, change vs baseline with its interval, best in bold."""
    head = "".join(f"<th>{esc(metric_label(m))}</th>" for m in metrics)
    best = {m: _best(comp, m) for m in metrics}
    rows = []
    for s in comp.samplers:
        cls = ' class="method"' if s == comp.method else ""
        cells = "".join(_cell(comp, s, m, best[m]) for m in metrics)
        rows.append(f'<tr data-sampler="{esc(s)}"{cls}><td class="name">{esc(s)}</td>{cells}</tr>')
    note = (
        f"{'Mean ± std over seeds' if comp.n_seeds() > 1 else 'One seed (no spread)'}; "
        f"second line: change relative to {comp.baseline} and, in "
        f"brackets, the paired bootstrap 95% interval over users (✓ = excludes 0: the "
        f"difference is real). Best value per column highlighted."
    )
    if not comp.significance:
        note += " No per-user arrays were given, so no difference was tested."
    return (
        f'<div class="wide"><table id="results-table"><thead><tr><th>sampler</th>{head}'
        f'</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
        f'<p class="note">{esc(note)}</p>'
    )


def best_vs_section(comp: Comparison) -> str:
    """The best sampler against each other one, each a paired interval over users (empty
    without per-user arrays); the rows of ``results.md``
    (:func:`~clusterneg.report.summary.best_vs_rows`)."""
    title, rows = best_vs_rows(comp)
    if not rows:
        return ""
    body = "".join(f'<tr><td class="name">{esc(r[0])}</td>'
                   + "".join(f'<td class="num">{esc(c)}</td>' for c in r[1:4])
                   + f"<td>{esc(r[4])}</td><td>{esc(r[5])}</td></tr>" for r in rows)
    label = esc(metric_label(comp.best_vs["metric"]))
    return (f'<section id="best-vs"><h2>{esc(title)}</h2><table id="best-vs-table"><thead>'
            f"<tr><th>against</th><th>{label} of {esc(comp.best_vs['best'])}</th>"
            f"<th>change</th><th>95% CI over users</th><th></th><th>per seed</th></tr>"
            f"</thead><tbody>{body}</tbody></table>"
            f'<p class="note">{esc(SEEDS_NOTE)}</p></section>')


def headroom_section(comp: Comparison, metric: str = "hr@50") -> str:
    """The headroom over the baseline (empty without a ``full`` run): ``full / in-batch - 1``
    with its interval, each sampler's gain and the share of the headroom it closes, and,
    where the interval includes 0, the sentence that no sampler can help here; the same
    numbers as ``results.md`` (:func:`~clusterneg.report.summary.headroom`).

    Example:
        >>> from clusterneg.report.summary import compare_runs
        >>> runs = [{"sampler": s, "metrics": {"hr@50": v}} for s, v in
        ...         (("in-batch", 0.20), ("full", 0.24), ("goobs", 0.22))]
        >>> page = headroom_section(compare_runs({"runs": runs}))
        >>> '<td class="num">0.50</td>' in page and "Headroom: the exact softmax" in page
        True
    """
    h = headroom(comp, metric)
    if h is None:
        return ""
    rows = "".join(f'<tr><td class="name">{esc(s)}</td>'
                   + "".join(f'<td class="num">{esc(c)}</td>' for c in cells) + "</tr>"
                   for s, *cells in headroom_rows(h))
    cls = "verdict" if h["flat"] else "note"
    return (
        f'<section id="headroom"><h2>Headroom over {esc(comp.baseline)} '
        f"({esc(metric_label(metric))})</h2>"
        f'<p class="{cls}">{esc(headroom_sentence(h, comp.baseline))}</p>'
        f'<table id="headroom-table"><thead><tr><th>sampler</th>'
        f"<th>gain over {esc(comp.baseline)}</th><th>headroom</th><th>share closed</th>"
        f"<th>vs {esc(h['reference'])} (95% CI over users)</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
        + (f'<p class="note">{esc(beyond)}</p>' if (beyond := beyond_reference_sentence(h))
           else "")
        + "</section>"
    )


def _summary_curves(comp: Comparison, prefix: str) -> dict[str, dict[int, float]]:
    """``{sampler: {K: mean}}`` from every ``prefix@K`` in the summary."""
    out: dict[str, dict[int, float]] = {}
    for s in comp.samplers:
        pts = {
            int(m.split("@")[1]): v["mean"]
            for m, v in comp.summary.get(s, {}).items()
            if m.startswith(prefix + "@") and m.split("@")[1].isdigit()
        }
        if len(pts) >= 2:
            out[s] = pts
    return out


def curves_section(inputs: ReportInputs, comp: Comparison) -> str:
    """HR@K and recall@K curves (from the inputs, else from the summary's metrics)."""
    parts = []
    for prefix, label, given in (("hr", "HR", inputs.hr_curves),
                                 ("recall", "Recall", inputs.recall_curves)):
        curves = given or _summary_curves(comp, prefix)
        if curves:
            uri = plots.curves_plot(curves, label)
            parts.append(_figure(uri, f"{label}@K per sampler", f"{prefix}-curves-img"))
    body = f'<div class="figs">{"".join(parts)}</div>' if parts else _missing("HR@K curves")
    return f'<section id="curves"><h2>HR@K and recall@K</h2>{body}</section>'


def exposure_table(comp: Comparison) -> str:
    """Exposure metrics per sampler (mean over seeds) next to the Lorenz curves."""
    names = ["top100_share", "coverage@50", "gini@50", "tail_share@50"]
    names = [n for n in names if any(n in comp.summary.get(s, {}) for s in comp.samplers)]
    if not names:
        return ""
    head = "".join(f"<th>{esc(metric_label(n))}</th>" for n in names)
    rows = "".join(
        f'<tr><td>{esc(s)}</td>'
        + "".join(f'<td class="num">{esc(fmt_value(n, comp.mean(s, n)))}</td>' for n in names)
        + "</tr>"
        for s in comp.samplers
    )
    return (
        f'<table id="exposure-table"><thead><tr><th>sampler</th>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def lorenz_section(inputs: ReportInputs, comp: Comparison) -> str:
    """Exposure Lorenz curves and the exposure metrics (the paper's popularity result)."""
    fig = (
        _figure(plots.lorenz_plot(inputs.exposure_counts), "exposure Lorenz curves",
                "lorenz-img")
        if inputs.exposure_counts
        else _missing("Exposure counts")
    )
    intro = (
        "How evenly the top-50 lists spread over the catalog. The paper reports the share of "
        "impressions going to the top-100 items falling from 50% to 32% with cluster negatives."
    )
    return (
        f'<section id="lorenz"><h2>Exposure and popularity bias</h2><p class="note">'
        f'{esc(intro)}</p><div class="figs">{fig}{exposure_table(comp)}</div></section>'
    )


def popularity_section(inputs: ReportInputs) -> str:
    """Recall by item-popularity bucket, grouped bars."""
    if not inputs.popularity_recall:
        body = _missing("Recall by popularity bucket")
    else:
        uri = plots.popularity_plot(inputs.popularity_recall, inputs.popularity_k)
        body = _figure(uri, "recall by item-popularity bucket", "popularity-img")
    return f'<section id="popularity"><h2>Recall by item popularity</h2>{body}</section>'


def _diag_rows(d: ClusterDiagnostics) -> list[tuple[str, str]]:
    def num(x: float | None) -> str:
        return "—" if is_missing(x) else f"{x:.4g}"

    rows = [("clusters", str(d.n_clusters)), ("how chosen", d.rule or "—")]
    rows.append(("false-negative rate, cluster vs random",
                 f"{num(d.false_negative_rate)} vs {num(d.false_negative_rate_random)}"))
    rows.append(("hardness, cluster vs random",
                 f"{num(d.hardness)} vs {num(d.hardness_random)}"))
    rows.append(("NMI with item attribute", num(d.nmi)))
    rows += [(k, num(v)) for k, v in d.extra.items()]
    return rows


def clusters_section(inputs: ReportInputs) -> str:
    """Cluster diagnostics, size distribution and the table of LLM-named clusters."""
    parts = []
    d = inputs.cluster_diagnostics
    if d is not None:
        rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>"
                       for k, v in _diag_rows(d))
        fig = ""
        if len(d.sizes):
            uri = plots.cluster_sizes_plot(d.sizes)
            fig = _figure(uri, "cluster size distribution", "cluster-sizes-img")
        parts.append(f'<div class="figs"><table id="cluster-diagnostics">{rows}</table>{fig}</div>')
    if inputs.cluster_rows:
        body = "".join(
            f'<tr data-cluster="{esc(r.cluster_id)}"><td class="num">{esc(r.cluster_id)}</td>'
            f'<td>{esc(r.name)}</td><td class="num">{esc(r.size)}</td>'
            f'<td>{esc("; ".join(r.examples))}</td></tr>'
            for r in inputs.cluster_rows
        )
        parts.append(
            '<div class="scroll"><table id="cluster-table"><thead><tr><th>id</th>'
            "<th>LLM name</th><th>items</th><th>example titles</th></tr></thead>"
            f"<tbody>{body}</tbody></table></div>"
        )
    content = "".join(parts) or _missing("Cluster diagnostics")
    return f'<section id="clusters"><h2>Clusters</h2>{content}</section>'


def _item(it: ExampleItem) -> str:
    cl = f'<span class="cl">{esc(it.cluster)}</span>' if it.cluster else ""
    return f"{esc(it.title)}{cl}"


def _example(u: ExampleUser, samplers: Sequence[str]) -> str:
    """One user's history, held-out targets and each sampler's top-10 side by side."""
    hist = "".join(f"<li>{_item(it)}</li>" for it in u.history)
    targets = "".join(f"<li>{_item(it)}</li>" for it in u.targets)
    names = [s for s in samplers if s in u.retrieved] + [
        s for s in u.retrieved if s not in samplers
    ]
    depth = max((len(u.retrieved[s]) for s in names), default=0)
    head = "".join(f"<th>{esc(s)}</th>" for s in names)
    rows = []
    for r in range(depth):
        cells = []
        for s in names:
            lst = u.retrieved[s]
            it = lst[r] if r < len(lst) else None
            cls = ' class="hit"' if it is not None and it.hit else ""
            cells.append(f"<td{cls}>{_item(it) if it else ''}</td>")
        rows.append(f'<tr><td class="num">{r + 1}</td>{"".join(cells)}</tr>')
    tgt = f"<p><b>Held out (test):</b></p><ul class='items'>{targets}</ul>" if targets else ""
    return (
        f'<article class="example-user" data-user="{esc(u.user)}"><h3>User {esc(u.user)}</h3>'
        f"<p><b>History</b> ({len(u.history)} items):</p><ul class='items'>{hist}</ul>{tgt}"
        f'<div class="scroll"><table class="retrieved"><thead><tr><th>#</th>{head}</tr>'
        f'</thead><tbody>{"".join(rows)}</tbody></table></div></article>'
    )


def examples_section(inputs: ReportInputs, comp: Comparison) -> str:
    """A few users: what they watched / bought, and what each sampler retrieves."""
    if not inputs.examples:
        body = _missing("Example users")
    else:
        body = (
            '<p class="note">Cluster names in grey; green ✓ = a held-out test item.</p>'
            + "".join(_example(u, comp.samplers) for u in inputs.examples)
        )
    return f'<section id="examples"><h2>Example users</h2>{body}</section>'


def header_section(results: Mapping[str, Any], comp: Comparison, title: str) -> str:
    facts = data_facts(results, comp)
    dataset = results.get("dataset", "unknown dataset")
    return (
        f"<header><h1>{esc(title)}: {esc(dataset)}</h1><p class='facts'>{esc(facts)}; "
        "every item ranked (no sampled candidates)."
        f'</p><p id="verdict" class="verdict"><b>Verdict.</b> {esc(verdict(comp))}</p></header>'
    )


def tuning_section(results: Mapping[str, Any]) -> str:
    """Each tuned sampler's chosen trial (empty when nothing was tuned); the same rows as
    ``results.md``.

    Example:
        >>> tuning = [{"temperature": 0.2, "lr": 0.002, "options": {}, "valid": 0.14},
        ...           {"temperature": 0.1, "lr": 0.005, "options": {}, "valid": 0.15}]
        >>> page = tuning_section({"runs": [{"sampler": "x", "config": {"tuning": tuning}}]})
        >>> '<td class="num">0.005</td>' in page
        True
    """
    rows = tuning_rows(results)
    if not rows:
        return ""
    head = "".join(f"<th>{esc(h)}</th>" for h in TUNING_HEADER)
    body = "".join(f'<tr><td class="name">{esc(r[0])}</td>'
                   + "".join(f'<td class="num">{esc(c)}</td>' for c in r[1:4])
                   + f"<td><code>{esc(r[4])}</code></td>"
                   + f'<td class="num">{esc(r[5])}</td></tr>' for r in rows)
    return (f'<section id="tuning"><h2>Tuning (validation)</h2><p class="note">'
            f"{esc(TUNING_NOTE)}</p><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></section>")


def how_made_html(results: Mapping[str, Any]) -> str:
    """The HTML section, with the validation and loss curves as figures."""
    prov = results.get("provenance")
    if not prov:
        return ""
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td><code>{html.escape(v)}</code></td></tr>"
                   for k, v in provenance_rows(prov, results))
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


# --- The page ------------------------------------------------------------------------------


def render_report(
    inputs: ReportInputs, results: Mapping[str, Any], comparison: Comparison | None = None
) -> str:
    """The whole self-contained HTML page.

    Args:
        inputs: the optional extras (curves, exposure counts, clusters, examples, per-user).
        results: ``results.json`` content.
        comparison: precomputed :class:`Comparison` (computed from ``results`` and
            ``inputs.per_user`` when None).

    References:
        Ji et al., arXiv 2607.00448, "Reported results" (HR@50, top-100 exposure share).

    Example:
        >>> runs = [{"sampler": "in-batch", "metrics": {"hr@50": 0.2}}]
        >>> page = render_report(ReportInputs(), {"dataset": "toy", "runs": runs})
        >>> page.startswith("<!DOCTYPE html>") and 'id="results-table"' in page
        True
    """
    comp = comparison or compare_runs(results, inputs.per_user, inputs.n_boot, inputs.boot_seed)
    body = "".join([
        header_section(results, comp, inputs.title),
        f'<section id="results"><h2>Results</h2>{results_table(comp)}</section>',
        best_vs_section(comp),
        headroom_section(comp),
        curves_section(inputs, comp),
        lorenz_section(inputs, comp),
        popularity_section(inputs),
        clusters_section(inputs),
        examples_section(inputs, comp),
        tuning_section(results),
        how_made_html(results),
        "<footer class='note'>Generated by clusterneg. Method: Ji et al., \"Real-Time Hard "
        "Negative Sampling via LLM-based Clustering for Large-Scale Two-Tower Retrieval\", "
        "arXiv 2607.00448.</footer>",
    ])
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(inputs.title)}: {esc(results.get('dataset', ''))}</title>"
        f"<style>{CSS}</style></head><body>{body}<script>{SCRIPT}</script></body></html>\n"
    )


def write_report(
    path: str | Path,
    inputs: ReportInputs,
    results: Mapping[str, Any],
    comparison: Comparison | None = None,
) -> Path:
    """Render the report and write it atomically to ``path``; returns the path."""
    return atomic_write_text(path, render_report(inputs, results, comparison))
