"""A tiny trained run for the serving tests: the synthetic five-topic catalog, "precomputed"
content vectors that encode each item's topic, a few epochs of training (seconds), and a fake
text encoder that maps a text to its topic's vector the same way, so new items land where
their text says."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import GENRES, write_synthetic

DIM = 16


def topic_vector(text: str) -> np.ndarray:
    """The topic named in ``text`` as a one-hot direction, plus small hash noise (16-d)."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    v = 0.15 * np.random.default_rng(seed).standard_normal(DIM)
    low = text.lower()
    for t, genre in enumerate(GENRES):
        if genre in low:
            v[t] += 1.0
    return v.astype(np.float32)


class TopicEncoder:
    """Fake text encoder with the :class:`~clusterneg.encode.base.ItemEncoder` shape."""

    model_id = "fake/topic"
    dim = DIM
    max_length = None
    tokenizer = None
    default_postprocess = "none"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str], progress: object | None = None) -> np.ndarray:
        self.calls.append(list(texts))
        return np.stack([topic_vector(t) for t in texts])


def build_run(root: Path, epochs: int = 5) -> Path:
    """Write the synthetic data and its vectors under ``root``, train, return the run dir."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from clusterneg.experiment import ExperimentConfig, prepare, run
    from clusterneg.model import ModelConfig
    from clusterneg.train.config import TrainConfig

    data = write_synthetic(root / "data")
    lines = (data / "items.csv").read_text().splitlines()[1:]
    ids = [line.split(",")[0] for line in lines]
    vecs = [topic_vector(line.split(",")[1]).tolist() for line in lines]
    pq.write_table(pa.table({"item_id": ids, "vector": vecs}), root / "vectors.parquet")
    exp = ExperimentConfig(dataset=str(data), encoder=f"precomputed:{root / 'vectors.parquet'}",
                           n_clusters=5, split="leave-last-out")
    prep = prepare(exp)
    out = root / "run"
    train = TrainConfig(epochs=epochs, batch_size=32, lr=0.02, patience=epochs, seed=0,
                        threads=1)
    run(prep, ModelConfig(dim=16, history_len=20), train, out_dir=out)
    return out


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny trained run per session (read only: copy it before adding items)."""
    return build_run(tmp_path_factory.mktemp("served"))


@pytest.fixture
def run_dir(trained_run: Path, tmp_path: Path) -> Path:
    """A private copy of the trained run that a test may add items to."""
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


def favourite(user_id: str) -> int:
    """The topic a synthetic user mostly likes (``u7`` -> 7 % 5)."""
    return int(user_id[1:]) % len(GENRES)
