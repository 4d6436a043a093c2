"""Tuning: every sampler's own grid names real options, ``tune_sampler`` runs with budget 2
for every sampler, and ``compare --budget 2 --samplers all`` runs through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clusterneg.compare import CompareConfig, tune_sampler, tuning_trials
from clusterneg.experiment import ExperimentConfig, prepare
from clusterneg.model import ModelConfig
from clusterneg.samplers import SAMPLER_NAMES, SAMPLERS, sampler_options
from clusterneg.train.config import TrainConfig


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_grid_names_options_the_sampler_has(name: str) -> None:
    assert set(SAMPLERS[name].tuning_grid) <= set(sampler_options(name))


def test_trial_zero_is_the_defaults_and_budget_caps_the_trials() -> None:
    base = ModelConfig(temperature=0.2)
    trials = tuning_trials("mixed", 3, base)
    assert len(trials) == 3 and trials[0].temperature == 0.2 and trials[0].options == {}
    # 3 temperatures x 3 learning rates x 2 sizes = 18 combinations, none of them mixed's
    # defaults (its default size is in neither); budget 30 takes them all plus the defaults
    assert len(tuning_trials("mixed", 30, base)) == 19
    # temperature x learning rate only: (0.2, 0.002) with no option IS the defaults, so it
    # is not tried twice: 8 more
    trials = tuning_trials("in-batch", 30, base, lr=0.002)
    assert (trials[0].temperature, trials[0].lr) == (0.2, 0.002)
    assert sorted((t.temperature, t.lr) for t in trials[1:]) == sorted(
        (t, lr) for t in (0.1, 0.2, 0.3) for lr in (0.001, 0.002, 0.005)
        if (t, lr) != (0.2, 0.002))


def test_learning_rate_grid_follows_the_comparisons_lr() -> None:
    """The learning rate is tuned for every sampler alike, as a factor of ``--lr``."""
    trials = tuning_trials("in-batch", 30, ModelConfig(temperature=0.2), lr=0.01)
    assert trials[0].lr == 0.01
    assert sorted({t.lr for t in trials}) == [0.005, 0.01, 0.025]
    # with no lr given, TrainConfig's default is the base
    assert tuning_trials("in-batch", 1, ModelConfig(temperature=0.2))[0].lr == TrainConfig.lr


def test_no_trial_repeats_the_defaults_nor_another_trial() -> None:
    """A grid point equal to the defaults (the base temperature and every option at its
    default or fixed value) would spend a trial on trial 0 again (issue 11, fair tuning)."""
    base = ModelConfig(temperature=0.2)
    fixed = {"n_negatives": 32, "ratio": "1:31"}  # the paper protocol's on Amazon
    trials = tuning_trials("cluster-goobs", 1000, base, fixed=fixed)
    defaults = sampler_options("cluster-goobs") | fixed
    keys = [(t.temperature, t.lr, tuple(sorted(t.options.items()))) for t in trials]
    assert len(keys) == len(set(keys))  # no trial twice
    for t in trials[1:]:
        same = all(defaults[k] == v for k, v in t.options.items())
        assert not (t.temperature == 0.2 and t.lr == TrainConfig.lr and same), t
    grid = SAMPLERS["cluster-goobs"].tuning_grid
    n_grid = 3 * 3 * int(np.prod([len(v) for v in grid.values()]))
    assert len(trials) == 1 + n_grid - 1  # exactly one grid point is the defaults here


def test_every_sampler_draws_the_same_temperatures_and_learning_rates() -> None:
    """Equal budgets cover the shared settings alike: trial i of every sampler trains at the
    same temperature and learning rate, whatever the size of its own option grid (in-batch
    has 9 points, cluster-goobs 216); the first pass visits every non-base point once."""
    base = ModelConfig(temperature=0.2)
    seqs = {name: [(t.temperature, t.lr) for t in tuning_trials(name, 9, base, lr=0.002)]
            for name in SAMPLER_NAMES}
    assert len({tuple(v) for v in seqs.values()}) == 1, seqs
    first_pass = seqs["in-batch"][1:]
    assert len(first_pass) == 8 and (0.2, 0.002) not in first_pass
    assert len(set(first_pass)) == 8
    # a later pass pairs each point with another option combination: all pairs in the end
    trials = tuning_trials("mixed", 30, base, lr=0.002)
    pairs = {(t.temperature, t.lr, t.options.get("n_negatives")) for t in trials[1:]}
    assert pairs == {(t, lr, n) for t in (0.1, 0.2, 0.3) for lr in (0.001, 0.002, 0.005)
                     for n in (32, 128)}


@pytest.fixture(scope="module")
def prep(tmp_path_factory: pytest.TempPathFactory):
    from conftest import write_synthetic

    path = write_synthetic(tmp_path_factory.mktemp("tune") / "ds", n_users=30, n_items=40,
                           per_user=8)
    rng = np.random.default_rng(0)
    emb = tmp_path_factory.mktemp("emb") / "emb.npy"
    np.save(emb, rng.standard_normal((40, 4)).astype(np.float32))
    return prepare(ExperimentConfig(dataset=str(path), encoder=f"precomputed:{emb}",
                                    n_clusters=4, cache_dir=str(emb.parent / "cache")))


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_tune_sampler_with_budget_2(prep, name: str) -> None:
    cfg = CompareConfig(samplers=[name], budget=2, model=ModelConfig(dim=8, history_len=0),
                        train=TrainConfig(epochs=1, batch_size=16, threads=1))
    best, scored = tune_sampler(prep, name, cfg)
    assert len(scored) == 2
    assert all(np.isfinite(s["valid"]) for s in scored)
    chosen = max(scored, key=lambda s: s["valid"])
    assert (best.temperature, best.lr, best.options) == (
        chosen["temperature"], chosen["lr"], chosen["options"])
    # the sampled trial really ran with the grid's option values
    assert set(scored[1]["options"]) <= set(SAMPLERS[name].tuning_grid)
    for key, value in scored[1]["options"].items():
        assert value in SAMPLERS[name].tuning_grid[key]


def test_compare_budget_2_all_samplers_cli(tiny_compare) -> None:
    code, err, out = tiny_compare("--samplers", "all", "--budget", "2")
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    assert {r["sampler"] for r in results["runs"]} == set(SAMPLER_NAMES)
    for row in results["runs"]:
        assert len(row["config"]["tuning"]) == 2
        # the final run trains with the chosen trial's learning rate and temperature
        best = max(row["config"]["tuning"], key=lambda s: s["valid"])
        assert row["config"]["train"]["lr"] == best["lr"]
        assert row["config"]["model"]["temperature"] == best["temperature"]
    # the report says what each sampler was tuned to, in a section of its own
    md = (out / "results.md").read_text()
    section = md.split("## Tuning (validation)")[1].split("## ")[0]
    assert all(f"| {s} | 2 |" in section for s in SAMPLER_NAMES)
    assert 'id="tuning"' in (out / "report.html").read_text()


@pytest.mark.parametrize("name", [n for n in SAMPLER_NAMES if SAMPLERS[n].tuning_grid])
def test_every_grid_value_trains(prep, name: str) -> None:
    """Each value of the sampler's grid (issue 11, step 5: cluster-goobs's ratio, logQ mode,
    masking of the user's items, ...) is accepted and trains to a finite loss."""
    from clusterneg.experiment import run

    for key, values in SAMPLERS[name].tuning_grid.items():
        for value in values:
            cfg = TrainConfig(epochs=1, batch_size=16, threads=1, max_steps=2, sampler=name,
                              sampler_options={key: value})
            res = run(prep, ModelConfig(dim=8, history_len=0), cfg)
            assert np.isfinite(res.train["curve"][-1]["loss"]), (key, value)


def test_best_trial_is_the_seed_0_run_not_trained_twice(prep, monkeypatch, tmp_path) -> None:
    """Tuning trials train with seed 0 and the comparison's settings, so the chosen one is
    the sampler's seed-0 run: a budget of 2 with 2 seeds trains 3 runs per sampler, not 4,
    and the kept run equals a seed-0 run trained afresh with the chosen trial."""
    import clusterneg.compare as cmp
    from clusterneg.compare_store import RunStore

    calls: list[tuple[str, int]] = []
    real = cmp.run

    def counting(prep_, model_cfg, train_cfg, **kw):
        calls.append((train_cfg.sampler, train_cfg.seed))
        return real(prep_, model_cfg, train_cfg, **kw)

    monkeypatch.setattr(cmp, "run", counting)
    cfg = CompareConfig(samplers=["in-batch", "goobs"], budget=2, seeds=2,
                        model=ModelConfig(dim=8, history_len=0),
                        train=TrainConfig(epochs=1, batch_size=16, threads=1))
    store = RunStore(tmp_path / "cmp", {"compare": "test"})
    store.start("")
    results, raw = cmp.compare(prep, cfg, store=store)
    assert sorted(calls) == sorted([(s, 0) for s in ("in-batch", "goobs") for _ in range(2)]
                                   + [("in-batch", 1), ("goobs", 1)])
    # the kept trial's directory is the seed-0 run; no trial is left on disk
    assert not (tmp_path / "cmp" / "tuning" / "runs").exists()
    for sampler in ("in-batch", "goobs"):
        assert store.finished(sampler, 0) is not None
        row = next(r for r in results["runs"] if (r["sampler"], r["seed"]) == (sampler, 0))
        best = max(row["config"]["tuning"], key=lambda s: s["valid"])
        again = cmp._run_one(prep, sampler, cmp.Trial(best["temperature"], best["options"],
                                                      best["lr"]), cfg, 0, None)
        assert again.metrics == row["metrics"] == raw[sampler][0].metrics
        # the run directory holds that run: re-evaluated from its weights, the same numbers
        assert store.load(sampler, 0, prep).metrics == row["metrics"]
