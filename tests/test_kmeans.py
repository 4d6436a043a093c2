"""Clusterer: the objective falls, more centroids give lower error, assignment is the nearest
centroid, seeded runs repeat, tiny clusters merge, save / load round-trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clusterneg.cluster import Clusterer, nmi
from clusterneg.errors import ConfigError, DataError


def blobs(n_per: int = 100, k: int = 5, d: int = 8, spread: float = 0.05, seed: int = 0
          ) -> tuple[np.ndarray, np.ndarray]:
    """k well-separated unit-direction blobs: (x float32 [k*n_per, d], labels)."""
    rng = np.random.default_rng(seed)
    centres = np.eye(d)[:k] * 3.0
    labels = np.repeat(np.arange(k), n_per)
    x = centres[labels] + spread * rng.standard_normal((len(labels), d))
    return x.astype(np.float32), labels


def random_points(n: int = 2000, d: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


@pytest.mark.parametrize("spherical", [True, False])
def test_objective_falls_every_iteration(spherical: bool) -> None:
    km = Clusterer(20, spherical=spherical, niter=15, seed=1)
    final = km.fit(random_points())
    hist = np.array(km.objective_history)
    assert 2 <= len(hist) <= 15 and final == hist[-1]
    assert np.all(np.diff(hist) <= 1e-6 * hist[0])
    assert hist[-1] < hist[0]


def test_more_centroids_lower_error() -> None:
    x = random_points(3000)
    errors = []
    for k in (2, 4, 8, 16, 32):
        km = Clusterer(k, spherical=False, seed=0)
        km.fit(x)
        dist, _ = km.search(x)
        errors.append(float(dist.mean()))
    assert all(a > b for a, b in zip(errors, errors[1:], strict=False))


@pytest.mark.parametrize("spherical", [True, False])
def test_assign_is_the_nearest_centroid(spherical: bool) -> None:
    x = random_points(500)
    km = Clusterer(12, spherical=spherical, seed=3)
    km.fit(x)
    new = random_points(300, seed=9)  # items that arrive after training
    q = new / np.linalg.norm(new, axis=1, keepdims=True) if spherical else new
    brute = ((q[:, None, :] - km.centroids[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(km.assign(new), brute.argmin(1))
    dist, _ = km.search(new)
    np.testing.assert_allclose(dist, brute.min(1), rtol=1e-4, atol=1e-5)
    assert km.assign(new).dtype == np.int64
    if spherical:
        np.testing.assert_allclose(np.linalg.norm(km.centroids, axis=1), 1.0, rtol=1e-5)


def test_recovers_separated_clusters_and_is_seeded() -> None:
    x, labels = blobs()
    a, b = Clusterer(5, seed=7, nredo=3), Clusterer(5, seed=7, nredo=3)
    a.fit(x)
    b.fit(x)
    np.testing.assert_array_equal(a.centroids, b.centroids)
    assert nmi(a.assign(x), labels) == pytest.approx(1.0)


def test_merge_small_moves_outliers_to_nearest_cluster() -> None:
    x, _ = blobs(n_per=50, k=3)
    outliers = np.zeros((2, x.shape[1]), np.float32)
    outliers[:, 5] = 3.0  # a 2-item group far from the others
    data = np.vstack([x, outliers])
    km = Clusterer(4, spherical=False, seed=0)
    ids = km.fit_assign(data, min_size=5)
    assert km.n_clusters == 3 and len(km.centroids) == 3
    sizes = np.bincount(ids, minlength=3)
    assert sizes.min() >= 5 and sizes.sum() == len(data)
    np.testing.assert_array_equal(ids, km.assign(data))  # online and offline agree


def test_save_load_round_trip(tmp_path: Path) -> None:
    x = random_points(400)
    km = Clusterer(6, seed=2)
    km.fit(x)
    km.save(tmp_path / "c")
    back = Clusterer.load(tmp_path / "c")
    np.testing.assert_array_equal(back.assign(x), km.assign(x))
    assert back.config() == km.config() and back.objective_history == km.objective_history
    with pytest.raises(DataError, match="not a saved Clusterer"):
        Clusterer.load(tmp_path / "missing")


def test_bad_input() -> None:
    with pytest.raises(ConfigError, match="cannot make 10 clusters from 5 points"):
        Clusterer(10).fit(random_points(5))
    with pytest.raises(ConfigError, match="before fit"):
        Clusterer(2).assign(random_points(5))
    km = Clusterer(2)
    km.fit(random_points(50))
    with pytest.raises(DataError, match="expected 16-d"):
        km.assign(random_points(5, d=4))
    with pytest.raises(ConfigError):
        Clusterer(0)
