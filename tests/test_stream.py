"""Streaming: every row once per epoch through a bounded shuffle buffer; online item
frequencies (Yi et al. 2019) approach the truth; training from shards lowers the loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from clusterneg.data.stream import ParquetStream
from clusterneg.data.synth import SynthConfig, synthesize
from clusterneg.model import ModelConfig
from clusterneg.train.config import TrainConfig
from clusterneg.train.frequency import StreamingFrequency
from clusterneg.train.streaming import StreamData, train_stream


@pytest.fixture
def shards(tmp_path: Path) -> Path:
    for k in range(3):  # 3 files x 2 row groups of 250 rows; item id = row number
        rows = np.arange(k * 500, (k + 1) * 500)
        pq.write_table(pa.table({"user_id": rows % 7, "item_id": rows}),
                       tmp_path / f"part-{k}.parquet", row_group_size=250)
    return tmp_path


def _items(stream: ParquetStream, epoch: int) -> list[int]:
    return [int(i) for _, items in stream.epoch(epoch) for i in items]


def test_each_row_once_per_epoch_shuffled_and_deterministic(shards: Path) -> None:
    s = ParquetStream(shards, batch_size=32, buffer_rows=200, seed=1, read_rows=50)
    e0, e1 = _items(s, 0), _items(s, 1)
    assert sorted(e0) == sorted(e1) == list(range(1500))
    assert e0 != e1 and e0 != sorted(e0)
    assert e0 == _items(ParquetStream(shards, 32, 200, seed=1, read_rows=50), 0)
    sizes = [len(u) for u, _ in s.epoch(0)]
    assert all(n == 32 for n in sizes[:-1]) and sum(sizes) == 1500


def test_ranks_read_disjoint_row_groups(shards: Path) -> None:
    r0, r1 = (set(_items(ParquetStream(shards, 16, 100, rank=r, world=2), 0)) for r in (0, 1))
    assert not (r0 & r1) and r0 | r1 == set(range(1500)) and len(r0) == len(r1) == 750


def test_the_buffer_bounds_how_far_a_row_travels(shards: Path) -> None:
    """A row leaves the buffer at most about buffer_rows + read_rows rows after it came in
    (in the order of the shuffled row groups), the price of bounded memory."""
    s = ParquetStream(shards, batch_size=10, buffer_rows=100, seed=0, read_rows=50)
    out = _items(s, 0)
    group_of = {i: i // 250 for i in range(1500)}
    first_group = group_of[out[0]]
    assert all(group_of[i] == first_group for i in out[:100])


def test_streaming_frequency_approaches_the_zipf_truth() -> None:
    n, b = 500, 64
    p = 1.0 / np.arange(1, n + 1)
    p /= p.sum()
    gen = torch.Generator().manual_seed(0)
    est = StreamingFrequency(n_buckets=2048, batch_size=b, alpha=0.02, n_items=n)
    errors = []
    for step in range(3000):
        est.update(torch.multinomial(torch.from_numpy(p), b, replacement=True, generator=gen),
                   step)
        if step + 1 in (300, 3000):
            q = est.probability(torch.arange(n)).double().numpy()
            errors.append(float(np.median(np.abs(q[:100] - p[:100]) / p[:100])))
    assert errors[1] < 0.12 and errors[1] < errors[0]
    assert float(est.probability(torch.tensor([0]))) == pytest.approx(p[0], rel=0.15)


def _unique_update(est: StreamingFrequency, items: torch.Tensor, step: int) -> None:
    """The estimator's update written with torch.unique over each hash row (reference)."""
    keep = 1.0 - est.alpha
    for r, row in enumerate(est.buckets(items)):
        h, c = torch.unique(row, return_counts=True)
        last, gap, c = est.last[r, h], est.gap[r, h], c.double()
        decayed = keep ** c * gap + keep ** (c - 1) * est.alpha * (step - last)
        est.gap[r, h] = torch.where(last >= 0, decayed, (step + 1.0) / c)
        est.last[r, h] = float(step)


def test_streaming_frequency_update_matches_the_unique_reference() -> None:
    """The sync-free update (scratch counts, duplicate writes of equal values) gives the
    same arrays as counting each bucket with torch.unique; small H forces collisions."""
    gen = torch.Generator().manual_seed(0)
    est, ref = StreamingFrequency(37, batch_size=16), StreamingFrequency(37, batch_size=16)
    for step in range(60):
        items = torch.randint(0, 80, (16,), generator=gen)
        est.update(items, step)
        _unique_update(ref, items, step)
    assert torch.allclose(est.gap, ref.gap, rtol=1e-12) and torch.equal(est.last, ref.last)
    assert not est._count.any()  # the scratch is left zeroed


def test_train_stream_with_online_frequencies_lowers_the_loss(tmp_path: Path) -> None:
    d = synthesize(SynthConfig(n_items=300, n_interactions=8_000, n_users=200, n_clusters=6,
                               shard_rows=5_000, seed=2), tmp_path / "syn")
    cluster = pq.read_table(d / "latent_items.parquet")["cluster"].to_numpy()
    data = StreamData(n_users=200, n_items=300, item_cluster=cluster, n_clusters=6)
    cfg = TrainConfig(sampler="cluster-goobs", sampler_options={"n_negatives": 8}, epochs=3,
                      batch_size=64, seed=0, threads=1)
    est = StreamingFrequency(1024, batch_size=64, alpha=0.05, n_items=300)
    res = train_stream(ParquetStream(d, 64, buffer_rows=2048), data,
                       ModelConfig(dim=16, history_len=0), cfg, frequency=est)
    losses = [e["loss"] for e in res.epochs]
    assert res.examples == 24_000 and losses[-1] < losses[0]
    truth = pq.read_table(d / "latent_items.parquet")["prob"].to_numpy()
    top = np.argsort(-truth)[:30]
    got = res.sampler.ctx.item_log_freq[torch.from_numpy(top)].exp().double().numpy()
    assert np.median(np.abs(got - truth[top]) / truth[top]) < 0.25


@pytest.mark.parametrize("rows, batch", [(1500, 32), (1500, 1499), (1501, 50), (1500, 1500),
                                         (1501, 1500), (1502, 1500)])
def test_train_batches_counts_the_batches_of_two_rows_or_more(shards: Path, rows: int,
                                                              batch: int) -> None:
    """Known up front (distributed ranks agree on it once per epoch): every batch but the
    last is full, and a last batch of one row does not count."""
    if rows > 1500:  # one more file, of the extra rows
        extra = np.arange(1500, rows)
        pq.write_table(pa.table({"user_id": extra % 7, "item_id": extra}),
                       shards / "part-9.parquet")
    s = ParquetStream(shards, batch_size=batch, buffer_rows=max(batch, 200), read_rows=50)
    sizes = [len(u) for u, _ in s.epoch(3)]
    assert sum(sizes) == rows
    assert s.train_batches() == sum(n >= 2 for n in sizes)
