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
    assert "| cluster-goobs | +30.0% | +25.0% | 1.20 |" in text


def test_no_headroom_says_no_sampler_can_help() -> None:
    res = _runs({"in-batch": 0.10, "full": 0.1004, "goobs": 0.101})
    h = headroom(compare_runs(res))
    assert h["flat"] and math.isnan(h["samplers"]["goobs"]["share"])
    assert "no negative sampler can help" in render_markdown(res, compare_runs(res))


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
    # sampler, gain, headroom, share closed: 0.05/0.25 and 0.30/0.25 by hand
    cells = re.findall(r"<tr><td class=\"name\">([^<]+)</td>((?:<td class=\"num\">[^<]*</td>)+)",
                       section)
    rows = {name: re.findall(r">([^<]*)</td>", tds) for name, tds in cells}
    assert rows == {"goobs": ["+5.0%", "+25.0%", "0.20"],
                    "cluster-goobs": ["+30.0%", "+25.0%", "1.20"]}
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
