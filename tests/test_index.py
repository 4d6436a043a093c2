"""ANN indexes: exact is exact, HNSW/IVF recall against exact, atomic save, the run's index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clusterneg.errors import ConfigError, DataError
from clusterneg.index import IndexSpec, build_index, load_index, recall_at_k, save_index, search


def _vectors(n: int, d: int = 16, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_exact_matches_a_numpy_argsort() -> None:
    x, q = _vectors(500), _vectors(20, seed=1)
    scores, ids = search(build_index(x, IndexSpec("exact")), q, 10)
    truth = np.argsort(-(q @ x.T), axis=1)[:, :10]
    assert (ids == truth).all()
    np.testing.assert_allclose(scores, np.take_along_axis(q @ x.T, truth, 1), rtol=1e-5)


@pytest.mark.parametrize("spec,floor", [(IndexSpec("hnsw", ef_search=200), 0.95),
                                        (IndexSpec("ivf", nlist=16, nprobe=16), 1.0),
                                        (IndexSpec("ivf", nlist=16, nprobe=4), 0.3)])
def test_ann_recall_against_exact(spec: IndexSpec, floor: float) -> None:
    x, q = _vectors(2000), _vectors(50, seed=1)
    exact = search(build_index(x, IndexSpec("exact")), q, 100)[1]
    approx = search(build_index(x, spec), q, 100)[1]
    r = recall_at_k(approx, exact, 100)
    assert floor <= r <= 1.0
    assert len(np.unique(approx[0])) == 100  # no id returned twice


def test_ivf_probing_more_cells_never_loses_recall() -> None:
    x, q = _vectors(3000), _vectors(40, seed=2)
    exact = search(build_index(x, IndexSpec("exact")), q, 50)[1]
    index = build_index(x, IndexSpec("ivf", nlist=32, nprobe=1))
    recalls = []
    for nprobe in (1, 4, 16, 32):
        index.nprobe = nprobe
        recalls.append(recall_at_k(search(index, q, 50)[1], exact, 50))
    assert recalls == sorted(recalls) and recalls[-1] == 1.0


def test_added_vectors_extend_the_numbering() -> None:
    x = _vectors(300)
    for kind in ("exact", "hnsw", "ivf"):
        index = build_index(x[:200], IndexSpec(kind, nlist=4, nprobe=4))
        index.add(x[200:])
        ids = search(index, x[250:251], 1)[1]
        assert ids[0, 0] == 250, kind


def test_recall_by_hand() -> None:
    approx = np.array([[0, 1, 2], [5, -1, -1]])
    exact = np.array([[2, 1, 7], [5, 6, -1]])
    assert recall_at_k(approx, exact, 3) == pytest.approx(3 / 5)


def test_save_is_atomic_and_round_trips(tmp_path: Path) -> None:
    x = _vectors(100)
    index = build_index(x, IndexSpec("hnsw"))
    path = save_index(index, tmp_path / "sub" / "i.faiss")
    assert sorted(p.name for p in path.parent.iterdir()) == ["i.faiss"]  # no temp left over
    again = load_index(path)
    assert (search(again, x[:5], 5)[1] == search(index, x[:5], 5)[1]).all()


def test_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="index kind"):
        IndexSpec("annoy").validate()
    (tmp_path / "bad.faiss").write_bytes(b"not an index")
    with pytest.raises(DataError, match="bad.faiss"):
        load_index(tmp_path / "bad.faiss")
    with pytest.raises(DataError, match="16-d"):
        search(build_index(_vectors(10), IndexSpec("exact")), _vectors(1, d=8), 1)
