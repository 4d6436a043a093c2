"""Sentence-transformers encoder (default: all-MiniLM-L6-v2), loaded lazily, offline.

Texts are sorted by token length and cut into batches so each batch pads to nearly its own
length (padding is wasted arithmetic), with a token budget per batch: short texts go in big
batches (per-call overhead amortised: 1.8x the items/s of batch 64 on ml-100k titles), long
ones in small batches. The batches run through ``SentenceTransformer.encode`` under
``torch.inference_mode``; ``dtype="bfloat16"`` casts the weights once (about 2x faster on CPUs
with native bf16 arithmetic; cosine to the float32 vectors in bench/results/encoders.md). The
counts of real and padded tokens are kept in :attr:`SentenceEncoder.stats` so benchmarks can
turn items/s into FLOP/s.

References:
    Reimers & Gurevych, "Sentence-BERT", EMNLP 2019; Wang et al., "MiniLM", NeurIPS 2020.
    Ji et al., arXiv 2607.00448, section "Method", step 1.

Example:
    >>> from clusterneg.encode.factory import minilm_path
    >>> enc = SentenceEncoder(minilm_path())
    >>> round(float(np.linalg.norm(enc.encode(["a red pen"])[0])), 5)  # unit norm
    1.0
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from clusterneg.encode.base import TokenBatchedEncoder, fingerprint
from clusterneg.errors import ConfigError

DTYPES = ("float32", "bfloat16")


class SentenceEncoder(TokenBatchedEncoder):
    """A sentence-transformers model directory behind the :class:`ItemEncoder` protocol.

    Args:
        path: model directory (with ``modules.json``).
        name: short name for the model id (default: the directory name).
        batch_size: most texts per forward pass.
        max_batch_tokens: most padded tokens per forward pass.
        dtype: "float32" or "bfloat16" (weights cast once; ~4x the matmul peak on
            AVX512-BF16, slightly different vectors, so it is part of the model id).
        normalize: L2-normalise the output (sentence models are trained for cosine).
        max_length: token cap (default: the model's ``max_seq_length``).
        device: torch device.
    """

    default_postprocess = "none"

    def __init__(self, path: str | Path, name: str | None = None, batch_size: int = 256,
                 max_batch_tokens: int = 8192, dtype: str = "float32", normalize: bool = True,
                 max_length: int | None = None, device: str = "cpu") -> None:
        self.path = Path(path)
        if dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        self.batch_size, self.dtype, self.normalize, self.device = (
            batch_size, dtype, normalize, device)
        self.max_batch_tokens = max_batch_tokens
        name = name or self.path.name
        self._model: Any | None = None
        self.dim = _st_dim(self.path)
        model_max = _st_max_seq_length(self.path)
        self.max_length = min(max_length or model_max, model_max) - self._n_special()
        opts = "" if dtype == "float32" else f"/{dtype}"
        opts += "" if normalize else "/raw"
        self.model_id = f"st/{name}@{fingerprint(self.path)}{opts}"
        self._reset_stats()

    def _n_special(self) -> int:
        return len(self.tokenizer.encode("", add_special_tokens=True).ids)

    def load(self) -> Any:
        """The underlying ``SentenceTransformer`` (loaded on first use, offline)."""
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(self.path), device=self.device,
                                              local_files_only=True)
            if self.dtype == "bfloat16":
                import torch

                self._model.to(torch.bfloat16)
        return self._model

    def encode_batch(self, batch: list[str]) -> np.ndarray:
        """One length-sorted batch -> float32 [B, dim] (unit rows when ``normalize``)."""
        import torch

        with torch.inference_mode():
            emb = self.load().encode(batch, batch_size=len(batch), convert_to_numpy=True,
                                     show_progress_bar=False,
                                     normalize_embeddings=self.normalize)
        return emb.astype(np.float32)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _st_dim(path: Path) -> int:
    """Output width from the module configs (last Dense ``out_features``, else pooling)."""
    modules = json.loads((path / "modules.json").read_text())
    dim = None
    for m in modules:
        cfg = _read_json(path / m.get("path", "") / "config.json")
        if m.get("type", "").endswith("Pooling"):
            dim = cfg.get("word_embedding_dimension", dim)
        elif m.get("type", "").endswith("Dense"):
            dim = cfg.get("out_features", dim)
    dim = dim or _read_json(path / "config.json").get("hidden_size")
    if not dim:
        raise ConfigError(f"cannot tell the embedding width of {path}")
    return int(dim)


def _st_max_seq_length(path: Path) -> int:
    cfg = _read_json(path / "sentence_bert_config.json")
    return int(cfg.get("max_seq_length")
               or _read_json(path / "config.json").get("max_position_embeddings", 512))
