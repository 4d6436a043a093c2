"""Negative samplers behind one protocol, and the registry that builds them by name.

Ten samplers: ``in-batch`` (Yi et al. 2019), ``mixed`` (Yang et al. 2020), ``cross-batch``
(Wang et al. 2021), ``dns`` (Zhang et al. 2013), ``ance`` (Xiong et al. 2021), ``goobs`` and
``cluster-goobs`` (Ji et al., arXiv 2607.00448, 2026); ``full``, the exact softmax (the
headroom reference); and two clusterneg variants, ``cluster-dns`` (model-scored same-cluster
negatives) and ``cluster-follow`` (clusters re-fit to the learned item vectors). Each returns
blocks of negatives with the log expected count of each candidate
(``clusterneg.samplers.proposals``) so the sampled
softmax (``clusterneg.loss``) corrects them consistently.

Example:
    >>> from clusterneg.samplers.protocol import SamplerContext
    >>> ctx = SamplerContext(n_items=10, item_log_freq=torch.full((10,), -2.3))
    >>> build_sampler("mixed", ctx, n_negatives=4).config_dict()["options"]["n_negatives"]
    4
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import torch  # noqa: F401  (used by the doctest)

from clusterneg.errors import ConfigError, check_known
from clusterneg.samplers.ance import AnceSampler
from clusterneg.samplers.cluster_dns import ClusterDnsSampler
from clusterneg.samplers.cluster_follow import ClusterFollowSampler
from clusterneg.samplers.cluster_goobs import ClusterGoobsSampler
from clusterneg.samplers.cross_batch import CrossBatchSampler
from clusterneg.samplers.dns import DnsSampler
from clusterneg.samplers.full import FullSoftmaxSampler
from clusterneg.samplers.goobs import GoobsSampler
from clusterneg.samplers.in_batch import InBatchSampler
from clusterneg.samplers.mixed import MixedSampler
from clusterneg.samplers.proposals import LOGQ_MODES
from clusterneg.samplers.protocol import (
    Batch,
    NegativeBlock,
    NegativeSampler,
    SamplerContext,
)

SAMPLERS: dict[str, type] = {cls.name: cls for cls in (
    InBatchSampler, MixedSampler, CrossBatchSampler, DnsSampler, AnceSampler, GoobsSampler,
    ClusterGoobsSampler, FullSoftmaxSampler, ClusterDnsSampler, ClusterFollowSampler,
)}
SAMPLER_NAMES: tuple[str, ...] = tuple(SAMPLERS)
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def spec_name(spec: str) -> str:
    """The sampler-name part of a spec, unchecked (``goobs@cached`` -> ``goobs``; any other
    string is returned whole): for code that orders or looks up specs without refusing
    names it does not know. :func:`sampler_of` is the checked form.

    Example:
        >>> spec_name("goobs@cached"), spec_name("custom")
        ('goobs', 'custom')
    """
    return spec.strip().partition("@")[0]


def split_spec(spec: str) -> tuple[str, str | None]:
    """A sampler spec, ``NAME`` or ``NAME@LABEL``, as (registry name, label or None).

    A label names one configuration of a sampler, so one comparison can hold the same
    sampler twice with different options (``goobs`` and ``goobs@cached``, each with its own
    ``-o SPEC:KEY=VALUE``) and pair them over users. Labels are letters, digits and
    ``_.+-`` (they name run directories).

    Raises:
        ConfigError: unknown sampler name, or an empty or unusable label.

    Example:
        >>> split_spec("goobs@cached"), split_spec("in-batch")
        (('goobs', 'cached'), ('in-batch', None))
    """
    name, at, label = spec.strip().partition("@")
    _sampler_class(name)  # name == spec_name(spec)
    if not at:
        return name, None
    if not _LABEL.fullmatch(label):
        raise ConfigError(f"sampler {spec!r}: the label after '@' must be letters, digits and "
                          "'_.+-', starting with a letter or digit")
    return name, label


def sampler_of(spec: str) -> str:
    """The registry name of a sampler spec (``goobs@cached`` -> ``goobs``)."""
    return split_spec(spec)[0]


def sampler_options(name: str) -> dict[str, Any]:
    """Option name -> default value of a sampler (ConfigError for an unknown name).

    A sampler whose ``__init__`` ends in ``**options`` hands them to its base class, so the
    base's keyword options are its options too (a variant declares only its own).

    Example:
        >>> list(sampler_options("cluster-dns"))[:3]
        ['n_candidates', 'n_negatives', 'n_cluster']
    """
    out: dict[str, Any] = {}
    for cls in _sampler_class(name).__mro__:
        if "__init__" not in vars(cls):
            continue
        params = inspect.signature(cls.__init__).parameters.values()
        for p in params:
            if p.kind is inspect.Parameter.KEYWORD_ONLY:
                out.setdefault(p.name, p.default)
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            break
    return out


def build_sampler(name: str, ctx: SamplerContext, **options: Any) -> NegativeSampler:
    """Build a sampler by name.

    Args:
        name: one of :data:`SAMPLER_NAMES`.
        ctx: what the sampler may know about the data (:class:`SamplerContext`).
        **options: sampler options (see each sampler's class and :func:`sampler_options`).

    Raises:
        ConfigError: unknown name, unknown option or a bad option value.
    """
    cls = _sampler_class(name)
    valid = sampler_options(name)
    check_known(f"{name} option", options, sorted(valid))
    return cls(ctx, **options)


def _sampler_class(name: str) -> type:
    check_known("sampler", [name], SAMPLER_NAMES)
    return SAMPLERS[name]


__all__ = [
    "AnceSampler", "Batch", "ClusterDnsSampler", "ClusterFollowSampler",
    "ClusterGoobsSampler", "CrossBatchSampler", "DnsSampler", "FullSoftmaxSampler",
    "GoobsSampler", "InBatchSampler", "LOGQ_MODES", "MixedSampler", "NegativeBlock",
    "NegativeSampler", "SAMPLERS", "SAMPLER_NAMES", "SamplerContext",
    "build_sampler", "sampler_of", "sampler_options", "spec_name", "split_spec",
]
