"""One streamed training run end to end: Parquet shards -> id spaces and clusters ->
:func:`~clusterneg.train.streaming.train_stream` (resumable) -> a run directory.

The run directory has the layout of ``clusterneg train``'s (``model.safetensors``,
``config.json``, ``metrics.json``, ``command.yaml``), so ``index``, ``recommend`` and ``serve``
read it; its ``config.json`` also has a ``stream`` block. A streamed run trains on every row
of its shards: there is no held-out split, so ``evaluate`` refuses it rather than report
metrics on interactions the model was trained on.

References:
    Ji et al., arXiv 2607.00448, 2026, section "Method" (the pool refreshed by the stream of
    training batches, Algorithm 1, sampled for the next batch, Algorithm 2). Yi et al.,
    RecSys 2019, section 4 (item frequencies for logQ estimated from the stream).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clusterneg.data.stream import ParquetStream
from clusterneg.data.stream_meta import LATENT_CLUSTERS, id_space, read_item_clusters
from clusterneg.model import ModelConfig
from clusterneg.train.config import TrainConfig
from clusterneg.train.frequency import StreamingFrequency
from clusterneg.train.state import Checkpointing
from clusterneg.train.streaming import StreamData, train_stream
from clusterneg.train.trainer import TrainResult


@dataclass
class StreamSource:
    """Where a streamed run reads its data and how.

    Args:
        data: a folder of Parquet shards with integer ``user_id``, ``item_id`` columns, or a
            ``clusterneg data synth`` directory.
        clusters: a table of ``item_id, cluster`` (Parquet or CSV); None: the synth
            directory's ``latent_items.parquet`` when there is one, else no clusters.
        buffer_rows: shuffle buffer rows (the memory bound).
        freq_alpha: moving-average rate of the online frequency estimate.
    """

    data: str
    clusters: str | None = None
    buffer_rows: int = 1_000_000
    freq_alpha: float = 0.01

    def cluster_table(self) -> Path | None:
        if self.clusters is not None:
            return Path(self.clusters)
        latent = Path(self.data) / LATENT_CLUSTERS
        return latent if latent.is_file() else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def open_stream(src: StreamSource, cfg: TrainConfig, rank: int = 0, world: int = 1
                ) -> tuple[ParquetStream, StreamData, StreamingFrequency]:
    """This rank's stream, what the run knows about its data, and a fresh frequency
    estimator (over the global batch of ``world x B`` examples); every input is checked
    here, before the towers are built."""
    n_users, n_items = id_space(src.data)
    stream = ParquetStream(src.data, cfg.batch_size, buffer_rows=src.buffer_rows,
                           seed=cfg.seed, rank=rank, world=world)
    table = src.cluster_table()
    cluster, n_clusters = (None, 0) if table is None else read_item_clusters(table, n_items)
    data = StreamData(n_users, n_items, cluster, n_clusters)
    freq = StreamingFrequency(n_buckets=n_items, batch_size=cfg.batch_size * world,
                              alpha=src.freq_alpha, n_items=n_items, seed=cfg.seed,
                              device=cfg.device)
    return stream, data, freq


def run_config(src: StreamSource, model_cfg: ModelConfig, train_cfg: TrainConfig
               ) -> dict[str, Any]:
    """The configuration a resumed run must share with the interrupted one (and that the
    run directory records): the run layout's ``experiment``, ``model``, ``train``, plus
    ``stream``."""
    return {"experiment": {"dataset": src.data, "encoder": "none"},
            "model": model_cfg.to_dict(), "train": train_cfg.to_dict(),
            "stream": src.to_dict()}


def stream_run(src: StreamSource, model_cfg: ModelConfig, train_cfg: TrainConfig,
               checkpoint: Checkpointing | None = None, progress: Any | None = None
               ) -> tuple[TrainResult, StreamData]:
    """Open the stream and train on it (resuming when ``checkpoint.resume``)."""
    stream, data, freq = open_stream(src, train_cfg)
    res = train_stream(stream, data, model_cfg, train_cfg, frequency=freq, progress=progress,
                       checkpoint=checkpoint)
    return res, data


def save_stream_run(out: Path, res: TrainResult, data: StreamData, config: dict[str, Any],
                    overwrite: bool = False, extra_files: dict[str, str] | None = None
                    ) -> Path:
    """Write the run directory atomically (``metrics.json`` holds the training record)."""
    from clusterneg.experiment import _train_record
    from clusterneg.provenance import provenance
    from clusterneg.train.checkpoint import save_checkpoint

    cfg = config["train"]
    prov = provenance(dataset=config["experiment"]["dataset"], n_clusters=data.n_clusters,
                      threads=cfg["threads"] or torch.get_num_threads(), device=cfg["device"])
    extra = ({} if data.item_cluster is None
             else {"item_cluster": torch.as_tensor(np.asarray(data.item_cluster))})
    return save_checkpoint(out, res.model.state_dict(),
                           config | {"sampler": res.sampler.config_dict(), "provenance": prov},
                           {"train": _train_record(res)}, extra_tensors=extra,
                           overwrite=overwrite, extra_files=extra_files)
