"""The one set of defaults shared by ``train``, ``compare`` and the library configs.

Kept free of heavy imports so the command line can show them (and reject bad options)
without loading torch. ``tests/test_defaults.py`` checks that
:class:`~clusterneg.model.ModelConfig` and :class:`~clusterneg.train.config.TrainConfig`
agree with these numbers.
"""

from __future__ import annotations

EPOCHS = 40
PATIENCE = 4
BATCH_SIZE = 256
LR = 2e-3
DIM = 64
TEMPERATURE = 0.2
HISTORY_LEN = 50
