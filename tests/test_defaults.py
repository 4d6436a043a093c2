"""One set of defaults: the library configs and the CLI agree (issue 9)."""

from __future__ import annotations

from clusterneg import defaults as D
from clusterneg.model import ModelConfig
from clusterneg.train.config import TrainConfig


def test_library_configs_use_the_shared_defaults() -> None:
    m, t = ModelConfig(), TrainConfig()
    assert (m.dim, m.temperature, m.history_len) == (D.DIM, D.TEMPERATURE, D.HISTORY_LEN)
    assert (t.epochs, t.patience, t.batch_size, t.lr) == (D.EPOCHS, D.PATIENCE, D.BATCH_SIZE,
                                                          D.LR)


def test_train_and_compare_share_epochs_patience_and_temperature() -> None:
    import inspect

    from clusterneg.commands.compare import compare_command
    from clusterneg.commands.train import train_command

    def default(fn, name):
        return inspect.signature(fn).parameters[name].default.default

    for name in ("epochs", "patience", "temperature", "lr", "dim", "batch_size"):
        assert default(train_command, name) == default(compare_command, name), name
