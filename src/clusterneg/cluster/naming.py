"""LLM-written cluster names: SmolLM2 names each cluster from its most central titles.

For each cluster the ``n_titles`` items nearest its centroid are listed, with the cluster's
most characteristic category tags when the catalog has categories (labels frequent in the
cluster and rare overall); SmolLM2-135M-Instruct answers with a 2-4 word name, prompted with a
few worked examples (a 135M model needs them) and greedy decoding, so the same titles always
give the same name. Names are cached on disk keyed by (model id, prompt version, the prompt),
so ``clusterneg clusters show`` is instant the second time.

The generator is any callable ``list[prompt messages] -> list[str]``; tests pass a fake one.

References:
    Ji et al., arXiv 2607.00448, section "Method", step 1 (semantic clusters of items).
    Allal et al., "SmolLM2", arXiv 2502.02737, 2025.

Example:
    >>> names = name_clusters(emb, item_cluster, centroids, titles, categories)  # doctest: +SKIP
    >>> names[:2]  # doctest: +SKIP
    ['Action thrillers', "Children's animation"]
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clusterneg.cluster.kmeans import central_items
from clusterneg.encode.cache import cache_root

log = logging.getLogger(__name__)

PROMPT_VERSION = "v1"
SYSTEM = "Give a short name (2 to 4 words) for the group of items. Reply with the name only."
#: Worked examples shown to the model before each real group: (titles, tags, name).
SHOTS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("The Shining", "Halloween", "A Nightmare on Elm Street", "Scream"), "Horror",
     "Horror films"),
    (("Chef's knife 8 inch", "Paring knife set", "Santoku knife", "Bread knife serrated"),
     "Kitchen & Dining, Cutlery", "Kitchen knives"),
    (("Mission: Impossible", "Lethal Weapon 2", "Rambo", "Terminator 2"), "Action, Adventure",
     "Action thrillers"),
    (("Wireless mouse", "USB keyboard", "Ergonomic mouse pad", "Bluetooth keyboard"),
     "Computer Accessories, Keyboards & Mice", "Computer accessories"),
)

Messages = list[dict[str, str]]
Generator = Callable[[list[Messages]], list[str]]


def group_text(titles: Sequence[str], tags: Sequence[str] = ()) -> str:
    """The user turn for one group: a bullet list of titles, then its tags if any."""
    text = "\n".join(f"- {t}" for t in titles)
    return text + (f"\nCommon tags: {', '.join(tags)}" if tags else "")


def build_messages(titles: Sequence[str], tags: Sequence[str] = ()) -> Messages:
    """The chat for one cluster: system line, the worked examples, then this group."""
    msgs = [{"role": "system", "content": SYSTEM}]
    for shot_titles, shot_tags, name in SHOTS:
        msgs += [{"role": "user", "content": group_text(shot_titles, shot_tags.split(", "))},
                 {"role": "assistant", "content": name}]
    msgs.append({"role": "user", "content": group_text(titles, tags)})
    return msgs


def clean_name(raw: str, max_words: int = 5) -> str:
    """First line of the reply, without quotes, a "Name:" lead or end punctuation; at most
    ``max_words`` words. Empty when nothing usable is left."""
    line = raw.strip().splitlines()[0] if raw.strip() else ""
    line = re.sub(r"^(name|category|label|group)\s*:\s*", "", line, flags=re.I)
    line = line.strip(" \"'*`.:;,-")
    return " ".join(line.split()[:max_words])


def cluster_tags(item_cluster: np.ndarray, categories: Sequence[Sequence[str]] | None,
                 k: int, top: int = 3, min_share: float = 0.25) -> list[list[str]]:
    """Per cluster, the labels most characteristic of it: share in the cluster (at least
    ``min_share``) times log(1 / share overall), best ``top``. Empty lists without labels."""
    if categories is None:
        return [[] for _ in range(k)]
    overall = Counter(lab for cats in categories for lab in set(cats))
    n = max(len(categories), 1)
    members: list[list[int]] = [[] for _ in range(k)]
    for j, c in enumerate(item_cluster):
        members[int(c)].append(j)
    out = []
    for items in members:
        counts = Counter(lab for j in items for lab in set(categories[j]))
        scored = [(cnt / len(items) * math.log(n / overall[lab]), lab)
                  for lab, cnt in counts.items() if cnt / len(items) >= min_share]
        out.append([lab for s, lab in sorted(scored, reverse=True)[:top] if s > 0])
    return out


class NameCache:
    """JSON file of prompt-hash -> name, per generator model id (atomic writes)."""

    def __init__(self, model_id: str, root: str | Path | None = None) -> None:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id)[:60]
        digest = hashlib.sha256(model_id.encode()).hexdigest()[:12]
        self.path = cache_root(root) / "names" / f"{slug}-{digest}.json"
        self.model_id = model_id
        self._data: dict[str, str] | None = None

    @staticmethod
    def key(messages: Messages) -> str:
        blob = json.dumps([PROMPT_VERSION, messages], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> str | None:
        if self._data is None:
            try:
                self._data = json.loads(self.path.read_text())
            except (OSError, json.JSONDecodeError):
                self._data = {}
        return self._data.get(key)

    def put(self, items: dict[str, str]) -> None:
        self.get("")
        assert self._data is not None
        self._data.update(items)
        from clusterneg.outputs import atomic_write_text

        atomic_write_text(self.path, json.dumps(self._data, indent=0, ensure_ascii=False))


def name_clusters(emb: np.ndarray, item_cluster: np.ndarray, centroids: np.ndarray,
                  titles: Sequence[str], categories: Sequence[Sequence[str]] | None = None,
                  *, generator: Any | None = None, cache: str | Path | None | bool = None,
                  n_titles: int = 8, progress: Any | None = None) -> list[str]:
    """A short name per cluster (index = cluster id).

    Args:
        emb: float [n_items, d] content embeddings; item_cluster: int64 [n_items];
            centroids: float [k, d].
        titles: per item, a short title (long ones are cut to 80 characters).
        categories: per item, its labels (adds "Common tags" to the prompt), or None.
        generator: callable ``list[Messages] -> list[str]`` with a ``model_id`` attribute
            (default: :class:`SmolLM2Namer`).
        cache: cache root, None for the default root, or False for no cache.
        n_titles: central titles shown per cluster.
        progress: a rich Progress.

    Returns:
        list of k names; "cluster <id>" where the model gave nothing usable.
    """
    k = len(centroids)
    gen = generator if generator is not None else SmolLM2Namer()
    tags = cluster_tags(item_cluster, categories, k)
    prompts = [build_messages([titles[j][:80] for j in idx], tags[c])
               for c, idx in enumerate(central_items(emb, item_cluster, centroids, n_titles))]
    store = None if cache is False else NameCache(getattr(gen, "model_id", "generator"),
                                                  None if cache is True else cache)
    keys = [NameCache.key(p) for p in prompts]
    names = [store.get(key) if store else None for key in keys]
    todo = [c for c in range(k) if names[c] is None]
    if todo:
        raw = _generate(gen, [prompts[c] for c in todo], progress)
        fresh = {keys[c]: clean_name(r) for c, r in zip(todo, raw, strict=True)}
        if store:
            store.put(fresh)
        for c in todo:
            names[c] = fresh[keys[c]]
    return [n or f"cluster {c}" for c, n in enumerate(names)]


def _generate(gen: Any, prompts: list[Messages], progress: Any | None) -> list[str]:
    batch = int(getattr(gen, "batch_size", len(prompts)) or len(prompts))
    task = None if progress is None else progress.add_task("naming clusters", total=len(prompts))
    out: list[str] = []
    for start in range(0, len(prompts), batch):
        out += gen(prompts[start:start + batch])
        if progress is not None:
            progress.advance(task, len(prompts[start:start + batch]))
    return out


class SmolLM2Namer:
    """Greedy chat completion with SmolLM2-135M-Instruct (dequantised GGUF), batched.

    Args:
        source: GGUF file or HF directory (default: the bundled SmolLM2 GGUF).
        max_new_tokens: reply length cap (names are short).
        batch_size: prompts per ``generate`` call (left-padded).
        model_cache: where the dequantised model lives (see ``materialise_gguf``).
        dtype: "auto" (bfloat16 autocast where the CPU has native bf16 arithmetic: ~2.7x
            faster prefill on AVX512-BF16, same names in our checks; else float32),
            "bfloat16" or "float32".
    """

    def __init__(self, source: str | Path | None = None, max_new_tokens: int = 10,
                 batch_size: int = 8, model_cache: str | Path | None = None,
                 dtype: str = "auto") -> None:
        from clusterneg.encode.base import fingerprint, native_bf16_dtype
        from clusterneg.encode.factory import smollm2_gguf

        self.source = Path(source) if source is not None else smollm2_gguf()
        self.max_new_tokens, self.batch_size, self.model_cache = (
            max_new_tokens, batch_size, model_cache)
        self.dtype = native_bf16_dtype() if dtype == "auto" else dtype
        self.model_id = (f"{self.source.stem}@{fingerprint(self.source)}/greedy{max_new_tokens}"
                         f"/{self.dtype}")
        self._model: Any | None = None
        self._tok: Any | None = None

    def load(self) -> tuple[Any, Any]:
        """(tokenizer, causal LM), loaded on first use."""
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from clusterneg.encode.causal_lm import materialise_gguf

            path = (materialise_gguf(self.source, self.model_cache)
                    if self.source.suffix == ".gguf" else self.source)
            self._tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self._tok.padding_side = "left"
            if self._tok.pad_token is None:
                self._tok.pad_token = self._tok.eos_token
            self._model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
            self._model.eval()
        return self._tok, self._model

    def __call__(self, prompts: list[Messages]) -> list[str]:
        """Greedy replies, one per chat."""
        import torch

        tok, model = self.load()
        texts = [tok.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
                 for p in prompts]
        enc = tok(texts, return_tensors="pt", padding=True)
        with torch.inference_mode(), torch.autocast(
                "cpu", dtype=torch.bfloat16, enabled=self.dtype == "bfloat16"):
            out = model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id)
        start = enc["input_ids"].shape[1]
        return [tok.decode(o[start:], skip_special_tokens=True) for o in out]

