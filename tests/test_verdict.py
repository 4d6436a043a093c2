"""The verdict is three-way, and a single seed shows no fake ``± 0`` (issue 9)."""

from __future__ import annotations

import numpy as np

from clusterneg.report.markdown import render_markdown
from clusterneg.report.summary import compare_runs, verdict


def _per_user(p: float, n_users: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"hits@50": rng.binomial(1, p, n_users).astype(float),
            "n_targets": np.ones(n_users)}


def _comparison(p_rival: float, p_method: float, n_users: int):
    per_user = {"in-batch": [_per_user(0.2, n_users, 1)],
                "goobs": [_per_user(p_rival, n_users, 2)],
                "cluster-goobs": [_per_user(p_method, n_users, 3)]}
    runs = [{"sampler": s, "seed": 0,
             "metrics": {"hr@50": float(pu[0]["hits@50"].mean())}}
            for s, pu in per_user.items()]
    return compare_runs({"runs": runs}, per_user, n_boot=300)


def test_an_interval_spanning_zero_is_inconclusive() -> None:
    comp = _comparison(0.30, 0.31, n_users=60)  # 60 users cannot tell 30% from 31%
    sig = comp.runner_up
    assert sig is not None and sig["rel_ci_low"] < 0 < sig["rel_ci_high"]
    assert verdict(comp).startswith("Inconclusive:")


def test_a_clear_win_is_yes_and_a_clear_loss_is_no() -> None:
    assert verdict(_comparison(0.20, 0.60, n_users=2000)).startswith("Yes:")
    assert verdict(_comparison(0.60, 0.20, n_users=2000)).startswith("No:")


def test_a_single_seed_has_no_plus_minus_zero() -> None:
    runs = [{"sampler": s, "seed": 0, "metrics": {"hr@50": v}}
            for s, v in (("in-batch", 0.2), ("cluster-goobs", 0.3))]
    md = render_markdown({"runs": runs}, compare_runs({"runs": runs}))
    assert "| cluster-goobs | 0.3000 |" in md and "±" not in md.split("## One seed")[1][:400]
    two = runs + [{"sampler": "in-batch", "seed": 1, "metrics": {"hr@50": 0.4}},
                  {"sampler": "cluster-goobs", "seed": 1, "metrics": {"hr@50": 0.5}}]
    assert "0.4000 ± 0.1414" in render_markdown({"runs": two}, compare_runs({"runs": two}))


def test_a_labelled_method_gets_the_verdict_and_its_other_configurations_are_no_rivals() -> None:
    """``compare --samplers in-batch,goobs@cs,cluster-goobs@cs`` (no plain cluster-goobs):
    the verdict is about cluster-goobs@cs against goobs@cs. With the plain method and a
    second configuration of it, the plain one is the method, and the other configuration,
    even when better, is not its rival: the rival is the best sampler that is not
    cluster-goobs."""
    per_user = {"in-batch": [_per_user(0.2, 3000, 1)], "goobs@cs": [_per_user(0.2, 3000, 2)],
                "cluster-goobs@cs": [_per_user(0.5, 3000, 3)]}
    runs = [{"sampler": s, "seed": 0, "metrics": {"hr@50": float(pu[0]["hits@50"].mean())}}
            for s, pu in per_user.items()]
    comp = compare_runs({"runs": runs}, per_user, n_boot=300)
    assert comp.method == "cluster-goobs@cs" and comp.runner_up["sampler"] == "goobs@cs"
    assert verdict(comp).startswith("Yes: cluster-goobs@cs has the best HR@50 of the 3 ")
    per_user["cluster-goobs"] = [_per_user(0.3, 3000, 4)]
    runs.append({"sampler": "cluster-goobs", "seed": 0,
                 "metrics": {"hr@50": float(per_user["cluster-goobs"][0]["hits@50"].mean())}})
    comp = compare_runs({"runs": runs}, per_user, n_boot=300)
    assert comp.method == "cluster-goobs" and comp.runner_up["sampler"] in ("in-batch",
                                                                            "goobs@cs")
    text = verdict(comp)
    assert text.startswith("Yes: cluster-goobs has the best HR@50 of the 3 "), text
