"""Named protocols: ``default`` (clusterneg's) and ``paper`` (the paper's setup, as far as it
is known), applied to an experiment, a model and the samplers' options in one place.

``paper`` (issue 11, step 3):

* **ID-only towers.** The item tower never sees the LLM embedding (``use_content=False``);
  the embedding only decides the clusters, so same-cluster negatives are the only route by
  which semantic similarity reaches the model (the paper keeps the towers "unchanged").
* **One same-cluster negative per example, the paper's ratio:** cluster:random 1:15 on
  MovieLens (16 pool negatives per example) and 1:31 on Amazon and any other catalog (32).
  ``goobs`` gets the same number of random pool negatives, so the step from goobs to
  cluster-goobs changes only where one of them comes from; the clusterneg variants
  (``cluster-dns``, ``cluster-follow``) get the same split.
* **The in-batch baseline as the paper describes its loss:** in-batch negatives with logQ
  correction and accidental-hit masking (section "Loss"), which is clusterneg's ``in-batch``;
  the ladder (``clusterneg ladder``) shows the weaker one without logQ next to it.
* **About 300 clusters at production scale:** ``n_clusters="auto"``, whose candidates scale
  with the catalog and include 300 (:mod:`clusterneg.cluster.auto`); no LLM cluster names.

References:
    Ji et al., arXiv 2607.00448, 2026, section "Method" (LLM clusters, towers unchanged,
    mixing ratio 1:15 MovieLens / 1:31 Amazon) and section "Loss" (in-batch with logQ and
    accidental-hit masking plus OOB and cluster negatives).

Example:
    >>> exp, opts = apply_protocol("paper", ExperimentConfig(dataset="ml-100k"), {})
    >>> exp.use_content, opts["cluster-goobs"], opts["goobs"]
    (False, {'ratio': '1:15', 'n_negatives': 16}, {'n_negatives': 16})
    >>> paper_ratio("../shared/data/amazon-3cat")
    (1, 31)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from clusterneg.errors import ConfigError
from clusterneg.experiment import ExperimentConfig
from clusterneg.samplers import spec_name

PROTOCOLS = ("default", "paper")
CLUSTER_SAMPLERS = ("cluster-goobs", "cluster-dns", "cluster-follow")


def paper_ratio(dataset: str) -> tuple[int, int]:
    """(cluster, random) negatives per example: 1:15 on MovieLens, 1:31 otherwise."""
    name = dataset.lower().replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    movielens = name.startswith(("ml-", "ml_", "movielens"))
    return (1, 15) if movielens else (1, 31)


def apply_protocol(
    name: str, exp: ExperimentConfig, sampler_options: dict[str, dict[str, Any]],
) -> tuple[ExperimentConfig, dict[str, dict[str, Any]]]:
    """The experiment and per-sampler options under protocol ``name``.

    Options the user fixed explicitly (``sampler_options``) win over the protocol's.

    Raises:
        ConfigError: unknown protocol name.
    """
    if name not in PROTOCOLS:
        raise ConfigError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {name!r}")
    if name == "default":
        return exp, sampler_options
    a, b = paper_ratio(exp.dataset)
    exp = replace(exp, use_content=False, name_clusters=False)
    preset: dict[str, dict[str, Any]] = {"goobs": {"n_negatives": a + b}}
    for s in CLUSTER_SAMPLERS:
        preset[s] = {"ratio": f"{a}:{b}", "n_negatives": a + b}
    # a labelled spec (goobs@cached) gets its sampler's preset under its own key
    merged = {s: dict(preset.get(spec_name(s), {})) | dict(sampler_options.get(s, {}))
              for s in set(preset) | set(sampler_options)}
    return exp, merged
