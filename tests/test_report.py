"""Report: summary math by hand, verdict computed from the numbers, a self-contained page."""

from __future__ import annotations

import base64
import doctest
import importlib
import json
import math
import re
import stat

import numpy as np
import pytest

from clusterneg.report import (
    ReportInputs,
    cluster_rows,
    compare_runs,
    example_user,
    plots,
    relative_change,
    render_markdown,
    render_report,
    summarize,
    verdict,
    write_results,
)
from clusterneg.report import summary as fmt
from clusterneg.report.summary import paired_compare, paired_values, seed_average, significance
from report_fixtures import BASE_HIT, EVIL_TITLE, synthetic


def _runs(values: dict[str, list[float]], metric: str = "hr@50") -> list[dict]:
    return [
        {"sampler": s, "seed": k, "metrics": {metric: v}}
        for s, vs in values.items()
        for k, v in enumerate(vs)
    ]


# --- summary math ---------------------------------------------------------------------------


def test_summarize_mean_and_sample_std_by_hand() -> None:
    runs = _runs({"goobs": [0.3, 0.3, 0.6], "in-batch": [0.2, 0.4]})
    runs[0]["train"] = {"examples_per_s": 100.0, "device": "cpu"}  # non-numeric skipped
    runs[1]["train"] = {"examples_per_s": 300.0}
    s = summarize(runs)
    assert list(s) == ["in-batch", "goobs"]  # schema order, not input order
    assert s["in-batch"]["hr@50"]["mean"] == pytest.approx(0.3)
    assert s["in-batch"]["hr@50"]["std"] == pytest.approx(math.sqrt(0.02))  # ddof = 1
    assert s["goobs"]["hr@50"]["mean"] == pytest.approx(0.4)
    assert s["goobs"]["hr@50"]["std"] == pytest.approx(math.sqrt(0.03))  # (.01+.01+.04)/2
    assert s["goobs"]["hr@50"]["n"] == 3
    assert s["goobs"]["examples_per_s"] == {"mean": 200.0, "std": pytest.approx(141.42, abs=0.01),
                                           "n": 2}
    assert "device" not in s["goobs"]


def test_summarize_single_seed_std_zero_and_nan_skipped() -> None:
    s = summarize(_runs({"dns": [0.5, float("nan")]}))["dns"]["hr@50"]
    assert s == {"mean": 0.5, "std": 0.0, "n": 1}


def test_summarize_rejects_a_name_in_two_sections() -> None:
    run = {"sampler": "dns", "metrics": {"x": 1.0}, "exposure": {"x": 2.0}}
    with pytest.raises(ValueError, match="'x'"):
        summarize([run])


def test_relative_change_by_hand() -> None:
    s = summarize(_runs({"in-batch": [0.2, 0.4], "cluster-goobs": [0.45]}))
    rel = relative_change(s)
    assert rel["cluster-goobs"]["hr@50"] == pytest.approx(0.5)  # 0.45 / 0.3 - 1
    assert rel["in-batch"]["hr@50"] == pytest.approx(0.0)
    assert math.isnan(relative_change(s, baseline="absent")["cluster-goobs"]["hr@50"])


def test_hr_per_user_is_weighted_hit_rate_and_seed_average() -> None:
    n = np.array([2.0, 1.0, 0.0])
    s0 = {"hits@50": np.array([1.0, 1.0, 0.0]), "n_targets": n}
    s1 = {"hits@50": np.array([2.0, 0.0, 0.0]), "n_targets": n}
    v, w = paired_values(s0, "hr@50")
    assert v[:2].tolist() == [0.5, 1.0] and math.isnan(v[2]) and w.tolist() == n.tolist()
    avg, w2 = seed_average([s0, s1], "hr@50")
    assert avg[:2].tolist() == [0.75, 0.5] and math.isnan(avg[2])
    with pytest.raises(ValueError, match="different targets"):
        seed_average([s0, {**s1, "n_targets": np.array([2.0, 2.0, 0.0])}], "hr@50")


def test_significance_averages_seeds_before_the_paired_test() -> None:
    a = np.linspace(0.1, 0.5, 40)
    base = [{"mrr": a}]
    # seeds at +0.2 and +0.0: the seed average is a + 0.1 for every user -> CI is the point
    shifted = [{"mrr": a + 0.2}, {"mrr": a}]
    sig = significance({"in-batch": base, "goobs": shifted, "dns": [{"mrr": a.copy()}]},
                       metrics=("mrr", "hr@50"), n_boot=200)
    g = sig["goobs"]["mrr"]
    assert g["mean_diff"] == pytest.approx(0.1)
    assert g["ci_low"] == pytest.approx(0.1) and g["ci_high"] == pytest.approx(0.1)
    assert g["rel_ci_low"] == pytest.approx(0.1 / 0.3) and g["real"] == 1.0
    assert sig["dns"]["mrr"]["real"] == 0.0  # identical runs: interval [0, 0]
    assert "hr@50" not in sig["goobs"]  # no hits@50 given: skipped, not invented
    assert "in-batch" not in sig


def test_paired_hr_difference_matches_pooled_summary_difference() -> None:
    rng = np.random.default_rng(0)
    n = rng.integers(1, 5, 200).astype(float)
    a = {"hits@50": rng.binomial(n.astype(int), 0.2).astype(float), "n_targets": n}
    b = {"hits@50": rng.binomial(n.astype(int), 0.3).astype(float), "n_targets": n}
    res = paired_compare([a], [b], "hr@50", n_boot=100)
    pooled = (b["hits@50"].sum() - a["hits@50"].sum()) / n.sum()
    assert res["mean_diff"] == pytest.approx(pooled)
    assert res["base_mean"] == pytest.approx(a["hits@50"].sum() / n.sum())


# --- verdict and markdown -----------------------------------------------------------------


def test_verdict_is_computed_from_the_numbers_and_flips() -> None:
    yes = compare_runs({"runs": _runs({"in-batch": [0.2], "goobs": [0.25],
                                       "cluster-goobs": [0.3]})})
    text = verdict(yes)
    assert text.startswith("Yes:")
    assert "+20.0% over the runner-up goobs" in text  # 0.30 / 0.25 - 1
    assert "+50.0% relative to in-batch" in text  # 0.30 / 0.20 - 1
    no = compare_runs({"runs": _runs({"in-batch": [0.2], "goobs": [0.25],
                                      "cluster-goobs": [0.22]})})
    text = verdict(no)
    assert text.startswith("No:")
    assert "-12.0% against the best sampler goobs" in text  # 0.22 / 0.25 - 1
    assert "+10.0% relative to in-batch" in text


def test_verdict_without_the_method_or_rivals() -> None:
    assert verdict(compare_runs({"runs": _runs({"in-batch": [0.2]})})).startswith("No verdict")
    only = compare_runs({"runs": _runs({"cluster-goobs": [0.2]})})
    assert verdict(only).startswith("No verdict")


def test_markdown_table_and_verdict_follow_the_data() -> None:
    results, inputs = synthetic()
    comp = compare_runs(results, inputs.per_user, n_boot=200)
    md = render_markdown(results, comp)
    assert "**Verdict.** Yes:" in md
    for s in BASE_HIT:
        stats = comp.summary[s]["hr@50"]
        assert f"| {s} | {stats['mean']:.4f} ± {stats['std']:.4f} |" in md
    rel = fmt.fmt_pct(comp.relative["cluster-goobs"]["hr@50"])
    assert f"{rel} relative to in-batch" in md
    row = next(line for line in md.splitlines() if line.startswith("| cluster-goobs | +"))
    assert row.split(" | ")[1].endswith("✓")  # +30% on 300 users x 3 seeds is real
    assert comp.significance["cluster-goobs"]["hr@50"]["ci_low"] > 0

    flipped, inputs2 = synthetic({**BASE_HIT, "cluster-goobs": 0.12})
    md2 = render_markdown(flipped, compare_runs(flipped, inputs2.per_user, n_boot=200))
    assert "**Verdict.** No:" in md2 and "Yes:" not in md2


def test_markdown_without_per_user_says_nothing_was_tested() -> None:
    results = {"runs": _runs({"in-batch": [0.2, 0.21], "cluster-goobs": [0.3, 0.31]})}
    md = render_markdown(results, compare_runs(results))
    assert "no difference was tested" in md and "✓" not in md.split("## Change")[1][:400]


# --- HTML ------------------------------------------------------------------------------------


def _svgs(page: str) -> list[str]:
    uris = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)
    return [base64.b64decode(u).decode("utf-8") for u in uris]


def test_html_is_self_contained_and_complete() -> None:
    results, inputs = synthetic()
    page = render_report(inputs, results)
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(?!data:|#)[a-z]+:""", page, re.I)
    assert "<link" not in page and "@import" not in page
    svgs = _svgs(page)
    assert len(svgs) == 5  # HR, recall, Lorenz, popularity, cluster sizes
    for svg in svgs:
        assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
        assert not re.search(r"""href\s*=\s*["'](?!#)""", svg)  # only internal references
    for section in ("verdict", "results-table", "curves", "lorenz", "exposure-table",
                    "popularity", "clusters", "cluster-table", "examples"):
        assert f'id="{section}"' in page
    for s in BASE_HIT:
        assert f'data-sampler="{s}"' in page
    assert "Content-Security-Policy" in page


def test_html_escapes_titles_and_names() -> None:
    results, inputs = synthetic()
    results["runs"][0]["sampler"] = "in<b>batch"
    inputs.cluster_rows[0].name = 'Noir "films" <i>'
    page = render_report(inputs, results)
    assert EVIL_TITLE not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; Sons" in page
    assert page.count("<script") == 1  # only the page's own script
    assert "in<b>batch" not in page and "in&lt;b&gt;batch" in page
    assert "Noir &quot;films&quot; &lt;i&gt;" in page


def test_html_degrades_gracefully_without_extras() -> None:
    results = {"dataset": "toy", "runs": _runs({"cluster-goobs": [0.3]})}
    page = render_report(ReportInputs(), results)
    assert page.count("not available") == 5  # curves, exposure, buckets, clusters, examples
    assert 'id="results-table"' in page and "<img" not in page
    empty = render_report(ReportInputs(), {"runs": []})
    assert 'id="results-table"' in empty


def test_curves_fall_back_to_summary_metrics() -> None:
    results = {"runs": [{"sampler": "in-batch", "metrics": {"hr@10": 0.1, "hr@50": 0.3}}]}
    page = render_report(ReportInputs(), results)
    assert 'id="hr-curves-img"' in page and 'id="recall-curves-img"' not in page


def test_write_results_writes_three_consistent_files(tmp_path) -> None:
    results, inputs = synthetic()
    results["runs"][0]["metrics"]["extra"] = float("nan")
    paths = write_results(tmp_path / "out", results, inputs)
    def no_nan(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")
    data = json.loads(paths["json"].read_text(), parse_constant=no_nan)
    assert data["runs"][0]["metrics"]["extra"] is None
    assert data["summary"]["in-batch"]["hr@50"]["mean"] == pytest.approx(
        np.mean([r["metrics"]["hr@50"] for r in results["runs"] if r["sampler"] == "in-batch"])
    )
    assert data["significance"]["cluster-goobs"]["hr@50"]["real"] == 1.0
    assert data["runner_up"]["sampler"] == "goobs"
    # the best sampler against every other one, each with its paired interval
    assert data["best_vs"]["best"] == "cluster-goobs"
    assert sorted(data["best_vs"]["tests"]) == sorted(
        {r["sampler"] for r in results["runs"]} - {"cluster-goobs"})
    assert {k: v for k, v in data["runner_up"].items() if k != "sampler"} == (
        data["best_vs"]["tests"]["goobs"])  # the same test as the runner-up's
    # per seed: each seed's own change, the runs matched by seed (not by position)
    hr = {(r["sampler"], str(r["seed"])): r["metrics"]["hr@50"] for r in results["runs"]}
    seeds = sorted({k for s, k in hr if s == "goobs"})
    assert len(seeds) > 1
    assert data["best_vs"]["per_seed"]["goobs"] == pytest.approx(
        [hr["cluster-goobs", k] / hr["goobs", k] - 1 for k in seeds])
    md = paths["markdown"].read_text()
    assert "## cluster-goobs (best HR@50) against each other sampler" in md
    section = md.split("against each other sampler", 1)[1]
    row = next(line for line in section.splitlines() if line.startswith("| goobs |"))
    assert row.endswith(f"| {fmt.seeds_cell(data['best_vs']['per_seed']['goobs'])} |")
    assert row.endswith(f"(all {len(seeds)} ahead) |") and fmt.SEEDS_NOTE in md
    assert 'id="best-vs-table"' in paths["html"].read_text()
    assert "Yes:" in md
    assert paths["html"].read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "report.html", "results.json", "results.md"]  # no temp files left behind
    assert stat.S_IMODE(paths["html"].stat().st_mode) == 0o644


def test_lorenz_plot_thins_large_catalogs() -> None:
    counts = np.random.default_rng(0).poisson(2.0, 200_000)
    svg = base64.b64decode(plots.lorenz_plot({"in-batch": counts}).split(",", 1)[1])
    assert len(svg) < 200_000  # 512 points per curve, not 200k


@pytest.mark.parametrize(
    "name", ["", ".html", ".inputs", ".markdown", ".plots", ".summary"]
)
def test_docstring_examples_run(name: str) -> None:
    # the package re-exports a function named `verdict`, so import submodules by path
    module = importlib.import_module("clusterneg.report" + name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_example_user_and_cluster_rows_from_indices() -> None:
    titles = ["a", "b", "c", "d"]
    u = example_user("9", [3], [1, 2], {"goobs": [0, 1, -1, 2], "dns": [3]}, titles,
                     np.array([0, 1, 1, 0]), k=2)
    assert [(x.title, x.cluster, x.hit) for x in u.retrieved["goobs"]] == [
        ("a", "cluster 0", False), ("b", "cluster 1", True)]  # k=2, names fall back
    assert [x.title for x in u.targets] == ["b", "c"] and u.history[0].title == "d"
    rows = cluster_rows(np.array([0, 1, 1, 1]), ["A", "B"], titles, n_examples=2)
    assert [(r.name, r.size, r.examples) for r in rows] == [("B", 3, ["b", "c"]),
                                                           ("A", 1, ["a"])]
