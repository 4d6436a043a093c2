"""Headroom in the comparison report (issue 11, step 1): hand-computed shares and the
sentence that says when no sampler can help."""

from __future__ import annotations

import math
import re

import numpy as np

from clusterneg.report import ReportInputs, compare_runs, render_markdown, render_report
from clusterneg.report.summary import headroom


def _runs(values: dict[str, float]) -> dict:
    return {"runs": [{"sampler": s, "seed": 0, "metrics": {"hr@50": v}}
                     for s, v in values.items()]}


def test_headroom_and_share_closed_by_hand() -> None:
    res = _runs({"in-batch": 0.10, "full": 0.125, "goobs": 0.105, "cluster-goobs": 0.13})
    h = headroom(compare_runs(res))
    assert h is not None and not h["flat"]
    assert math.isclose(h["headroom"], 0.25)
    assert math.isclose(h["samplers"]["goobs"]["share"], 0.05 / 0.25)
    assert math.isclose(h["samplers"]["cluster-goobs"]["share"], 0.3 / 0.25)  # beyond full
    text = render_markdown(res, compare_runs(res))
    assert "## Headroom over in-batch (HR@50)" in text
    # the last column: against full, 0.13 / 0.125 - 1 (no per-user values: no interval)
    assert "| cluster-goobs | +30.0% | +25.0% | 1.20 | +4.0% |" in text


def test_no_headroom_says_no_sampler_can_help() -> None:
    res = _runs({"in-batch": 0.10, "full": 0.1004, "goobs": 0.101})
    h = headroom(compare_runs(res))
    assert h["flat"] and math.isnan(h["samplers"]["goobs"]["share"])
    assert "no negative sampler can help" in render_markdown(res, compare_runs(res))


def test_flat_headroom_with_a_sampler_past_it_does_not_say_no_sampler_can_help() -> None:
    """amazon-office at batch 32 with tuning: the exact softmax within noise of in-batch,
    a sampler clearly above in-batch; the report must not claim no sampler can help."""
    rng = np.random.default_rng(1)
    base = (rng.random(4000) < 0.1).astype(float)
    same = rng.permutation(base)  # the same mean as in-batch, per user noise
    better = np.maximum(base, (rng.random(4000) < 0.05).astype(float))
    per_user = {"in-batch": [{"hr@50": base}], "full": [{"hr@50": same}],
                "cluster-goobs": [{"hr@50": better}], "goobs": [{"hr@50": base}]}
    res = _runs({k: v[0]["hr@50"].mean() for k, v in per_user.items()})
    comp = compare_runs(res, per_user, n_boot=200)
    h = headroom(comp)
    assert h["flat"] and h["samplers"]["cluster-goobs"]["gain_real"]
    assert not h["samplers"]["goobs"]["gain_real"]
    text = render_markdown(res, comp)
    assert "no negative sampler can help" not in text
    assert "yet cluster-goobs beats in-batch with an interval above 0" in text


def test_headroom_uses_the_paired_interval_when_per_user_values_exist() -> None:
    rng = np.random.default_rng(0)
    base = (rng.random(4000) < 0.1).astype(float)
    better = np.maximum(base, (rng.random(4000) < 0.05).astype(float))  # clearly better
    per_user = {"in-batch": [{"hr@50": base}], "full": [{"hr@50": better}],
                "goobs": [{"hr@50": base}]}
    res = _runs({"in-batch": base.mean(), "full": better.mean(), "goobs": base.mean()})
    h = headroom(compare_runs(res, per_user, n_boot=200))
    assert not h["flat"] and h["ci_low"] > 0
    assert h["samplers"]["goobs"]["share"] == 0.0


def test_no_full_run_no_headroom_section() -> None:
    res = _runs({"in-batch": 0.10, "goobs": 0.11})
    assert headroom(compare_runs(res)) is None
    assert "Headroom" not in render_markdown(res, compare_runs(res))


def _headroom_html(res: dict, per_user: dict | None = None) -> str:
    """The report page's headroom section, cut out of the whole page."""
    page = render_report(ReportInputs(), res, compare_runs(res, per_user, n_boot=200))
    start = page.find('<section id="headroom">')
    return page[start:page.index("</section>", start)] if start >= 0 else ""


def test_html_report_shows_the_same_headroom_as_results_md() -> None:
    res = _runs({"in-batch": 0.10, "full": 0.125, "goobs": 0.105, "cluster-goobs": 0.13})
    section = _headroom_html(res)
    assert "Headroom over in-batch (HR@50)" in section
    assert "Headroom: the exact softmax (full) is +25.0% on HR@50" in section
    # sampler, gain, headroom, share closed (0.05/0.25 and 0.30/0.25), change against full
    # (0.105/0.125 - 1 and 0.13/0.125 - 1), by hand
    cells = re.findall(r"<tr><td class=\"name\">([^<]+)</td>((?:<td class=\"num\">[^<]*</td>)+)",
                       section)
    rows = {name: re.findall(r">([^<]*)</td>", tds) for name, tds in cells}
    assert rows == {"goobs": ["+5.0%", "+25.0%", "0.20", "-16.0%"],
                    "cluster-goobs": ["+30.0%", "+25.0%", "1.20", "+4.0%"]}
    assert "full" not in rows and "in-batch" not in rows


def test_html_report_says_no_sampler_can_help_when_the_interval_includes_zero() -> None:
    rng = np.random.default_rng(1)
    base = (rng.random(3000) < 0.1).astype(float)
    full = base.copy()
    full[:2] = 1 - full[:2]  # two users differ: the interval spans 0
    per_user = {"in-batch": [{"hr@50": base}], "full": [{"hr@50": full}],
                "goobs": [{"hr@50": base}]}
    res = _runs({"in-batch": base.mean(), "full": full.mean(), "goobs": base.mean()})
    h = headroom(compare_runs(res, per_user, n_boot=200))
    assert h["flat"] and h["ci_low"] <= 0 <= h["ci_high"]
    section = _headroom_html(res, per_user)
    assert "no negative sampler can help on this catalog" in section
    assert re.search(r"\[[+-]\d+\.\d%, [+-]\d+\.\d%\]", section)  # the interval is shown
    assert "<td class=\"num\">—</td>" in section  # no share of a flat headroom


def test_html_report_without_full_run_has_no_headroom_section() -> None:
    assert _headroom_html(_runs({"in-batch": 0.10, "goobs": 0.11})) == ""


def test_a_sampler_beyond_the_exact_softmax_is_named_with_its_interval() -> None:
    """Paired over users against ``full``: one sampler clearly above it, one clearly below,
    one equal; only the first two are named, in results.md and report.html alike."""
    rng = np.random.default_rng(2)
    base = (rng.random(5000) < 0.1).astype(float)
    full = np.maximum(base, (rng.random(5000) < 0.05).astype(float))
    above = np.maximum(full, (rng.random(5000) < 0.05).astype(float))
    per_user = {"in-batch": [{"hr@50": base}], "full": [{"hr@50": full}],
                "goobs": [{"hr@50": base}], "cluster-goobs": [{"hr@50": above}],
                "mixed": [{"hr@50": full}]}
    res = _runs({s: v[0]["hr@50"].mean() for s, v in per_user.items()})
    comp = compare_runs(res, per_user, n_boot=200)
    h = headroom(comp)
    cg = h["samplers"]["cluster-goobs"]["vs_reference"]
    assert math.isclose(cg["change"], above.mean() / full.mean() - 1)
    assert cg["real"] and 0 < cg["ci_low"] < cg["change"] < cg["ci_high"]
    assert h["samplers"]["goobs"]["vs_reference"]["ci_high"] < 0
    assert not h["samplers"]["mixed"]["vs_reference"]["real"]  # identical to full
    text = render_markdown(res, comp)
    line = next(ln for ln in text.splitlines() if ln.startswith("Beyond the exact softmax"))
    assert line.startswith("Beyond the exact softmax (full) on HR@50: cluster-goobs +")
    assert "Below the exact softmax (full) on HR@50: goobs -" in line
    assert "mixed" not in line
    section = _headroom_html(res, per_user)
    assert "Beyond the exact softmax (full) on HR@50: cluster-goobs +" in section
