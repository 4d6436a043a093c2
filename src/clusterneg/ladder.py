"""The baseline ladder: where a gain comes from, one rung at a time.

The literature's ladder of two-tower training objectives (issue 11, step 2), each rung one
change from the previous, on the same data, model, seeds and budget:

1. ``in-batch, no logQ``: the batch's other positives, uncorrected (popularity-biased);
2. ``+ logQ``: the same negatives with the log-frequency correction (Yi et al. 2019);
3. ``+ uniform negatives``: plus random pool negatives (GOOBS, which amounts to Mixed
   Negative Sampling, Yang et al. 2020);
4. ``+ same-cluster negatives``: one of those drawn from the positive's LLM cluster instead
   (Cluster GOOBS, the paper's method);
5. optionally ``exact softmax``: the whole catalog (the ceiling every sampled softmax
   estimates), so the ladder also shows the headroom.

Each rung's change from the previous one (and from the first) comes with the paired
bootstrap 95% interval over users, per-user values averaged over seeds.

References:
    Ji et al., arXiv 2607.00448, 2026, sections "Loss" and "Reported results".
    Yi et al., RecSys 2019 (logQ); Yang et al., WWW 2020 Companion (mixed negatives).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from clusterneg.experiment import Prepared, run
from clusterneg.model import ModelConfig
from clusterneg.report.summary import fmt_pct, fmt_value, metric_label, paired_compare
from clusterneg.train.config import TrainConfig

log = logging.getLogger(__name__)

METRICS = ("hr@50", "recall@50", "ndcg@10")


@dataclass(frozen=True)
class Rung:
    """One step of the ladder: a sampler and whether logQ is on."""

    label: str
    sampler: str
    logq: bool = True


RUNGS = (
    Rung("in-batch, no logQ", "in-batch", logq=False),
    Rung("+ logQ", "in-batch"),
    Rung("+ uniform negatives (goobs)", "goobs"),
    Rung("+ same-cluster negatives (cluster-goobs)", "cluster-goobs"),
)
CEILING = Rung("exact softmax (full)", "full", logq=False)


@dataclass
class LadderResult:
    """Per rung: mean test metrics, per-seed per-user arrays, and the paired changes."""

    rungs: list[Rung]
    metrics: list[dict[str, float]] = field(default_factory=list)
    per_user: list[list[dict]] = field(default_factory=list)
    step: list[dict[str, dict[str, float]]] = field(default_factory=list)
    total: list[dict[str, dict[str, float]]] = field(default_factory=list)
    train: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"rungs": [{"label": r.label, "sampler": r.sampler, "logq": r.logq,
                           "metrics": m, "change_from_previous": s, "change_from_first": t,
                           "train": tr}
                          for r, m, s, t, tr in zip(self.rungs, self.metrics, self.step,
                                                    self.total, self.train, strict=True)]}


def run_ladder(
    prep: Prepared, model: ModelConfig, train: TrainConfig,
    sampler_options: dict[str, dict[str, Any]], seeds: int = 1, ceiling: bool = False,
    progress: Any | None = None, n_boot: int = 1000,
) -> LadderResult:
    """Train every rung with every seed (test evaluated once per run) and compare them."""
    rungs = [*RUNGS, CEILING] if ceiling else list(RUNGS)
    out = LadderResult(rungs)
    for rung in rungs:
        runs = []
        for seed in range(seeds):
            cfg = replace(train, sampler=rung.sampler, logq_correction=rung.logq, seed=seed,
                          sampler_options=dict(sampler_options.get(rung.sampler, {})))
            runs.append(run(prep, model, cfg, progress=progress))
            log.info("%s seed %d hr@50 %.4f", rung.label, seed, runs[-1].metrics["hr@50"])
        out.metrics.append({m: sum(r.metrics[m] for r in runs) / len(runs)
                            for m in runs[0].metrics})
        out.per_user.append([r.per_user for r in runs])
        out.train.append({"epochs": [r.train["epochs"] for r in runs],
                          "best_epoch": [r.train["best_epoch"] for r in runs],
                          "train_seconds": [r.train["train_seconds"] for r in runs]})
        first, prev = out.per_user[0], out.per_user[-2] if len(out.per_user) > 1 else None
        out.step.append(_changes(prev, out.per_user[-1], n_boot))
        out.total.append(_changes(first if prev is not None else None, out.per_user[-1],
                                  n_boot))
    return out


def _changes(a: list[dict] | None, b: list[dict], n_boot: int) -> dict[str, dict[str, float]]:
    if a is None:
        return {}
    res = {}
    for m in METRICS:
        t = paired_compare(a, b, m, n_boot=n_boot, seed=0)
        res[m] = {"rel": t["mean_diff"] / t["base_mean"] if t["base_mean"] else float("nan"),
                  "rel_ci_low": t["rel_ci_low"], "rel_ci_high": t["rel_ci_high"],
                  "real": bool(t["real"])}
    return res


def render_ladder(result: LadderResult, title: str, metrics: tuple[str, ...] = METRICS) -> str:
    """``ladder.md``: one row per rung, its metrics and its change from the previous rung.

    Example:
        >>> r = LadderResult([RUNGS[0], RUNGS[1]], metrics=[{"hr@50": 0.1}, {"hr@50": 0.12}],
        ...     step=[{}, {"hr@50": {"rel": 0.2, "rel_ci_low": 0.1, "rel_ci_high": 0.3,
        ...                           "real": True}}], total=[{}, {}], train=[{}, {}])
        >>> print(render_ladder(r, "toy", ("hr@50",)).splitlines()[-1])
        | + logQ | 0.1200 | +20.0% [+10.0%, +30.0%] ✓ |
    """
    head = ["rung"]
    for m in metrics:
        head += [metric_label(m), "change vs previous rung [95% CI]"]
    lines = [f"# Baseline ladder: {title}", "",
             "Each rung changes one thing from the previous one; brackets: paired bootstrap "
             "95% interval over users of the change, relative to the previous rung; "
             "✓ = the interval excludes 0.", "",
             "| " + " | ".join(head) + " |", "|:---|" + "---:|" * (2 * len(metrics))]
    for i, (rung, vals) in enumerate(zip(result.rungs, result.metrics, strict=True)):
        cells = []
        for m in metrics:
            cells.append(fmt_value(m, vals.get(m, float("nan"))))
            ch = result.step[i].get(m)
            if ch is None:
                cells.append("—")
                continue
            mark = " ✓" if ch["real"] else ""
            cells.append(f"{fmt_pct(ch['rel'])} [{fmt_pct(ch['rel_ci_low'])}, "
                         f"{fmt_pct(ch['rel_ci_high'])}]{mark}")
        lines.append(f"| {rung.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
