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

# serving (``recommend``, ``items add``, ``index``, the HTTP service)
#: bench/results/ann.md: at 1M vectors, IVF (sqrt(n) cells, nprobe 128) was the fastest
#: setting with recall@100 >= 0.95; HNSW built with efConstruction 40 stayed below 0.75
INDEX_KIND = "ivf"
SERVE_MAX_K = 1000  # items one recommendation may return
SERVE_MAX_ADD = 1000  # new items one call may add
