"""Stream training batches from Parquet shards through a bounded shuffle buffer.

Data larger than memory is read row group by row group (pyarrow), in a shuffled order of row
groups, into a buffer of at most ``buffer_rows`` rows; whenever the buffer is full it is
shuffled and its first half leaves as batches, the rest waits for more rows. Memory is
``O(buffer_rows + read_rows)`` whatever the data size, and the order is a function of
(seed, epoch, rank) only. With ``world > 1`` each rank reads its own row groups
(``units[rank::world]``), so ranks see disjoint data.

Ids must already be contiguous integers (``user_id`` in ``[0, n_users)``, ``item_id`` in
``[0, n_items)``), as ``clusterneg data synth`` writes them: mapping raw ids needs a pass over
the data, which a stream cannot afford at 10^9 rows.

References:
    DESIGN.md, "Real time and scale" (data larger than memory streams from Parquet shards;
    memory stays flat in the data size). Ji et al., arXiv 2607.00448, 2026, section "Method"
    (a pool refreshed by the stream of training batches).

Example:
    >>> import tempfile, pyarrow as pa, pyarrow.parquet as pq
    >>> d = Path(tempfile.mkdtemp())
    >>> pq.write_table(pa.table({"user_id": range(10), "item_id": range(10)}), d / "a.parquet")
    >>> s = ParquetStream(d, batch_size=4, buffer_rows=6)
    >>> [len(u) for u, _ in s.epoch(0)], s.train_batches()
    ([4, 4, 2], 3)
    >>> sorted(int(i) for _, it in s.epoch(0) for i in it) == list(range(10))
    True
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from clusterneg.errors import ConfigError, DataError

COLUMNS = ("user_id", "item_id")


def shard_paths(source: str | Path) -> list[Path]:
    """The ``.parquet`` files of a directory (or of its ``interactions/`` folder), sorted."""
    root = Path(source)
    if root.is_file():
        return [root]
    if (root / "interactions").is_dir():
        root = root / "interactions"
    paths = sorted(root.glob("*.parquet")) if root.is_dir() else []
    if not paths:
        raise DataError(root, "no .parquet shards to stream")
    return paths


class ParquetStream:
    """Shuffled batches of (user, item) from Parquet shards, in bounded memory.

    Args:
        source: a Parquet file, a folder of shards, or a synth directory.
        batch_size: rows per batch B.
        buffer_rows: shuffle buffer size (memory bound), >= batch_size.
        seed: shuffling seed.
        rank, world: this process's share of the row groups (distributed training).
        read_rows: rows read per pyarrow record batch.
    """

    def __init__(self, source: str | Path, batch_size: int, buffer_rows: int = 1_000_000,
                 seed: int = 0, rank: int = 0, world: int = 1, read_rows: int = 65_536) -> None:
        if batch_size < 1 or buffer_rows < batch_size or not 0 <= rank < world:
            raise ConfigError(f"stream needs 1 <= batch_size <= buffer_rows and 0 <= rank < "
                              f"world, got {batch_size}, {buffer_rows}, {rank}, {world}")
        self.paths = shard_paths(source)
        self.batch_size, self.buffer_rows = int(batch_size), int(buffer_rows)
        self.seed, self.rank, self.world, self.read_rows = seed, rank, world, read_rows
        units = []
        for path in self.paths:
            meta = pq.ParquetFile(path).metadata
            missing = set(COLUMNS) - set(meta.schema.names)
            if missing:
                raise DataError(path, f"missing column(s) {sorted(missing)}")
            units += [(path, g, meta.row_group(g).num_rows) for g in range(meta.num_row_groups)]
        self.units = units[rank::world]
        self.n_rows = sum(n for *_, n in self.units)

    def train_batches(self) -> int:
        """Batches of at least 2 rows an epoch yields (the same every epoch): every batch but
        the last is full, so ``ceil(n_rows / B)``, less a last batch of a single row.

        Known up front, so ranks that must stop together agree once per epoch instead of
        once per step.
        """
        n, b = self.n_rows, self.batch_size
        return -(-n // b) - (1 if n % b == 1 else 0)

    def epoch(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (users, items) int64 batches; the last one may be short."""
        rng = np.random.default_rng([self.seed, epoch, self.rank])
        cap = self.buffer_rows + self.read_rows
        buf = np.empty((2, cap), dtype=np.int64)
        fill = 0
        for k in rng.permutation(len(self.units)):
            for users, items in self._read(self.units[k]):
                n = len(users)
                buf[0, fill:fill + n], buf[1, fill:fill + n] = users, items
                fill += n
                if fill >= self.buffer_rows:
                    buf[:, :fill] = buf[:, rng.permutation(fill)]
                    out = (fill // 2) // self.batch_size * self.batch_size
                    yield from self._batches(buf[:, :out])
                    buf[:, :fill - out] = buf[:, out:fill]
                    fill -= out
        buf[:, :fill] = buf[:, rng.permutation(fill)]
        yield from self._batches(buf[:, :fill])

    def _read(self, unit: tuple[Path, int, int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        path, group, _ = unit
        f = pq.ParquetFile(path)
        for rb in f.iter_batches(batch_size=self.read_rows, row_groups=[group],
                                 columns=list(COLUMNS)):
            users = rb.column(0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
            items = rb.column(1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
            yield users, items

    def _batches(self, block: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for a in range(0, block.shape[1], self.batch_size):
            yield block[0, a:a + self.batch_size].copy(), block[1, a:a + self.batch_size].copy()
