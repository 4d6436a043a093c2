"""Which torch device a run uses, checked once before any work starts.

``--device cuda`` puts the towers, the sampler context (item frequencies, clusters), the pool
and the samplers' generators, the loss, the training batches and the evaluation scores on
the GPU; the data arrays are moved once per run, not per step.

References:
    Ji et al., arXiv 2607.00448, 2026, section "Method" (GPU training at production scale;
    the pool lives next to the model).

Example:
    >>> check_device("cpu")
    'cpu'
"""

from __future__ import annotations

import torch

from clusterneg.errors import ConfigError


def check_device(device: str) -> str:
    """``device`` if torch can use it here, else ConfigError naming what is available."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"--device must be cpu, cuda or cuda:N, got {device!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: no CUDA device is available to torch here "
                              "(use --device cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {device}: only {torch.cuda.device_count()} CUDA "
                              "device(s)")
    elif dev.type != "cpu":
        raise ConfigError(f"--device must be cpu, cuda or cuda:N, got {device!r}")
    return device
