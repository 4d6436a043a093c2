"""What every item encoder shares: the :class:`ItemEncoder` protocol, the token-batched base
class of the text encoders, and their helpers (fingerprint, fast tokenizer, length batches).

An encoder turns item texts into content embeddings, float32 ``[N, d]``, and names itself
with a stable ``model_id`` (model + weights fingerprint + options that change the output), on
which the embedding cache keys. Encoders load their network lazily, on the first
:meth:`~ItemEncoder.encode` call, so a run whose texts are all cached never loads a model.
Encoders are built from a spec string by :func:`clusterneg.encode.factory.build_encoder`.

References:
    Ji et al., arXiv 2607.00448, section "Method", step 1 (a fine-tuned multimodal LLM encodes
    each item's content into an embedding).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from clusterneg.errors import ConfigError


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


class TokenBatchedEncoder:
    """Base of the text encoders that run a network over length-sorted token batches.

    Texts are sorted by token length and cut into batches (:func:`length_batches`) so each
    batch pads to nearly its own length; real and padded token counts accumulate in
    :attr:`stats` so benchmarks can turn items/s into FLOP/s. A subclass sets ``path``,
    ``dim``, ``max_length``, ``batch_size``, ``max_batch_tokens`` and ``model_id``, and
    implements :meth:`load` and :meth:`encode_batch`.
    """

    path: Path
    dim: int
    max_length: int | None
    batch_size: int
    max_batch_tokens: int | None
    model_id: str
    _tokenizer: Any | None = None

    def _reset_stats(self) -> None:
        self.stats = {"texts": 0, "tokens": 0, "padded_tokens": 0}

    @property
    def tokenizer(self) -> Any:
        """The model's fast tokenizer (``tokenizer.json``), loaded on first use."""
        if self._tokenizer is None:
            self._tokenizer = load_fast_tokenizer(self.path)
        return self._tokenizer

    def load(self) -> Any:
        """Load the network (once); returns what :meth:`encode_batch` needs."""
        raise NotImplementedError

    def encode_batch(self, batch: list[str]) -> np.ndarray:
        """One batch of similar-length texts -> float32 [len(batch), dim]."""
        raise NotImplementedError

    def encode(self, texts: list[str], progress: Any | None = None) -> np.ndarray:
        """Embed ``texts`` -> float32 ``[len(texts), dim]``, batch by batch."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        self.load()
        task = progress_task(progress, f"encode {self.model_id}", len(texts))
        for idx, padded in length_batches(self.tokenizer, texts, self.batch_size,
                                          self.max_length, self.max_batch_tokens):
            out[idx] = self.encode_batch([texts[i] for i in idx])
            self.stats["texts"] += len(idx)
            self.stats["tokens"] += padded[0]
            self.stats["padded_tokens"] += padded[1]
            progress_advance(progress, task, len(idx))
        return out
