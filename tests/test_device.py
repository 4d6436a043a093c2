"""--device: checked before any work; the whole step on the GPU where one exists."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from clusterneg.errors import ConfigError
from clusterneg.train.device import check_device

CUDA = torch.cuda.is_available()


def test_cpu_is_accepted_and_nonsense_refused() -> None:
    assert check_device("cpu") == "cpu"
    for bad in ("tpu", "gpu0", ""):
        with pytest.raises(ConfigError, match="--device"):
            check_device(bad)


@pytest.mark.skipif(CUDA, reason="checks the message on a machine without CUDA")
def test_cuda_without_a_gpu_is_one_line_exit_2(synthetic_dir: Path, tmp_path: Path,
                                               cli_run) -> None:
    code, _, err = cli_run("train", "--dataset", str(synthetic_dir), "--encoder", "none",
                           "--device", "cuda", "--out", str(tmp_path / "r"))
    assert code == 2 and "no CUDA device" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_cluster_goobs_trains_on_the_gpu(synthetic_dir: Path, tmp_path: Path) -> None:
    import numpy as np

    from clusterneg.data.load import load_dataset
    from clusterneg.model import ModelConfig
    from clusterneg.train.config import TrainConfig
    from clusterneg.train.trainer import TrainData, train

    ds = load_dataset(synthetic_dir)
    data = TrainData(ds.n_users, ds.n_items, ds.interactions,
                     item_cluster=np.arange(ds.n_items) % 5, n_clusters=5)
    cfg = TrainConfig(sampler="cluster-goobs", sampler_options={"n_negatives": 8}, epochs=3,
                      batch_size=32, device="cuda")
    res = train(data, ModelConfig(dim=8, history_len=5), cfg)
    assert res.sampler.pool.item_ids.is_cuda and next(res.model.parameters()).is_cuda
    assert res.epochs[-1]["loss"] < res.epochs[0]["loss"]
