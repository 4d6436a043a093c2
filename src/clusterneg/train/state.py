"""Resumable training state: model, optimizer, sampler (pool), RNGs, data cursor, early stop.

A checkpoint is a directory ``step-000000123`` inside the run's state directory holding
``state.safetensors`` (every tensor) and ``state.json`` (everything else, with each tensor
replaced by a reference to its safetensors key). It is written under a temporary name and
renamed (``clusterneg.train.checkpoint.write_run_dir``), so a crash never leaves a half
checkpoint: a directory named ``step-*`` is complete by construction. Nothing is unpickled.

The data cursor is the epoch, the number of batches of it already trained, that epoch's
shuffle order and the shuffle generator's state after drawing it, so a resumed run trains
exactly the batches the interrupted one would have trained next, with the same negatives
(sampler generator and pool restored), and ends with the same weights.

References:
    DESIGN.md, "Real time and scale" (checkpoints hold model, optimizer, pool, RNG states and
    the data cursor; temp directory + rename; safetensors, never unpickle).

Example:
    >>> skeleton, tensors = flatten({"a": torch.ones(2), 3: (1.5, "x")})
    >>> skeleton["__items__"][1]
    [3, {'__tuple__': [1.5, 'x']}]
    >>> unflatten(skeleton, tensors)[3]
    (1.5, 'x')
"""

from __future__ import annotations

import json
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from clusterneg.errors import ConfigError, DataError
from clusterneg.outputs import is_run_dir, write_run_dir
from clusterneg.train.checkpoint import write_json

TENSORS = "state.safetensors"
JSON = "state.json"
KEEP = 2  # complete checkpoints kept; older ones are removed after a newer one is written
_STEP_DIR = re.compile(r"^step-(\d{9})$")


# ---- nested state <-> (JSON skeleton, flat tensors) -------------------------------------

def flatten(obj: Any, tensors: dict[str, torch.Tensor] | None = None,
            path: str = "t") -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a nested state (dicts, lists, tuples, tensors, numpy arrays, scalars) into a JSON
    skeleton and a flat ``{key: tensor}`` dict for safetensors.

    Dicts whose keys are not all strings (an optimizer's ``{param_index: state}``) become
    ``{"__items__": [[key, value], ...]}`` so their keys come back with their type.
    """
    tensors = {} if tensors is None else tensors
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().cpu().clone().contiguous()
        return {"__tensor__": path}, tensors
    if isinstance(obj, np.ndarray):
        tensors[path] = torch.from_numpy(np.ascontiguousarray(obj).astype(_np_safe(obj.dtype)))
        return {"__ndarray__": path, "dtype": str(obj.dtype)}, tensors
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: flatten(v, tensors, f"{path}.{k}")[0] for k, v in obj.items()}, tensors
        items = [[k, flatten(v, tensors, f"{path}.{i}")[0]] for i, (k, v) in enumerate(obj.items())]
        return {"__items__": items}, tensors
    if isinstance(obj, (list, tuple)):
        out = [flatten(v, tensors, f"{path}.{i}")[0] for i, v in enumerate(obj)]
        return ({"__tuple__": out} if isinstance(obj, tuple) else out), tensors
    if isinstance(obj, np.generic):
        return obj.item(), tensors
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj, tensors
    raise TypeError(f"cannot checkpoint a {type(obj).__name__}")


def unflatten(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten`."""
    if isinstance(skeleton, list):
        return [unflatten(v, tensors) for v in skeleton]
    if not isinstance(skeleton, dict):
        return skeleton
    if "__tensor__" in skeleton:
        return tensors[skeleton["__tensor__"]]
    if "__ndarray__" in skeleton:
        return tensors[skeleton["__ndarray__"]].numpy().astype(skeleton["dtype"])
    if "__tuple__" in skeleton:
        return tuple(unflatten(v, tensors) for v in skeleton["__tuple__"])
    if "__items__" in skeleton:
        return {k: unflatten(v, tensors) for k, v in skeleton["__items__"]}
    return {k: unflatten(v, tensors) for k, v in skeleton.items()}


def _np_safe(dtype: np.dtype) -> np.dtype:
    """uint32 / uint64 have no torch twin everywhere: widen to int64 (values fit for RNGs)."""
    return np.dtype(np.int64) if dtype.kind == "u" and dtype.itemsize >= 4 else dtype


# ---- RNG states -------------------------------------------------------------------------

def rng_state() -> dict[str, Any]:
    """Global torch, numpy and Python RNG states."""
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": list(np_state),
            "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`."""
    torch.set_rng_state(state["torch"].to(torch.uint8))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


# ---- the loop's own state ---------------------------------------------------------------

@dataclass
class LoopState:
    """The training loop's position and early-stopping record.

    The epoch's loss is kept as a running sum on the model's device, so a step never reads the
    loss back to the host (one sync per step on an accelerator); it is read once per epoch
    (:meth:`mean_loss`) and saved as is in a checkpoint, so a resumed epoch's mean is exact.

    Args:
        epoch: current epoch (0-based).
        position: batches of the epoch already trained (or, streamed, taken from the stream).
        order: int64 [n] the epoch's shuffle order (None before the epoch started, and always
            None for a streamed run, whose order is a function of seed, epoch and rank).
        shuffle_state: the shuffle generator's state right after drawing ``order``.
        loss_sum: float64 [] sum of the epoch's step losses so far (None before the first).
        n_losses: how many step losses ``loss_sum`` adds up.
        bad: epochs without validation improvement (early stopping).
        best_state: model weights of the best validation epoch so far, or None.

    Example:
        >>> st = LoopState()
        >>> for loss in (1.0, 2.0, 4.5):
        ...     st.add_loss(torch.tensor(loss))
        >>> st.mean_loss(), st.n_losses
        (2.5, 3)
    """

    epoch: int = 0
    position: int = 0
    order: torch.Tensor | None = None
    shuffle_state: torch.Tensor | None = None
    loss_sum: torch.Tensor | None = None
    n_losses: int = 0
    bad: int = 0
    best_state: dict[str, torch.Tensor] | None = None

    def add_loss(self, loss: torch.Tensor) -> None:
        """Add a step's loss to the running sum, on its device (no host read)."""
        value = loss.detach().to(torch.float64)
        self.loss_sum = value.clone() if self.loss_sum is None else self.loss_sum.add_(value)
        self.n_losses += 1

    def mean_loss(self) -> float:
        """The epoch's mean step loss so far (one host read), 0.0 before the first step."""
        return float(self.loss_sum) / self.n_losses if self.n_losses else 0.0

    def next_epoch(self) -> None:
        """Move the cursor to the start of the next epoch (early-stopping record kept)."""
        self.epoch, self.position, self.order, self.shuffle_state = self.epoch + 1, 0, None, None
        self.loss_sum, self.n_losses = None, 0

    def to(self, device: str | torch.device) -> LoopState:
        """Put the running loss on ``device`` (a checkpoint holds it on the CPU)."""
        if self.loss_sum is not None:
            self.loss_sum = self.loss_sum.to(device)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoopState:
        d = dict(d)
        if "losses" in d:  # a checkpoint written before the running sum: same information
            losses = d.pop("losses")
            d["loss_sum"] = torch.tensor(float(sum(losses)), dtype=torch.float64) \
                if losses else None
            d["n_losses"] = len(losses)
        return cls(**d)


# ---- checkpoint directories -------------------------------------------------------------

def step_dirs(state_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in ``state_dir`` as (step, path), oldest first."""
    if not Path(state_dir).is_dir():
        return []
    found = [(int(m.group(1)), p) for p in Path(state_dir).iterdir()
             if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return sorted(found)


def save_state(state_dir: Path, step: int, payload: dict[str, Any]) -> Path:
    """Write ``state_dir/step-<step>`` atomically (replacing a checkpoint of that step) and
    keep the :data:`KEEP` newest."""
    skeleton, tensors = flatten(payload)

    def fill(tmp: Path) -> None:
        save_file(tensors, str(tmp / TENSORS))
        write_json(tmp / JSON, skeleton)

    # a checkpoint of the same step is replaced: a distributed rank resumed from an older
    # step than its newest (see ``distributed.common_step``) writes that step again
    dest = write_run_dir(Path(state_dir) / f"step-{step:09d}", fill, kind="train-state",
                         overwrite=True)
    for _, old in step_dirs(state_dir)[:-KEEP]:
        if is_run_dir(old):  # only checkpoints this code wrote are ever deleted
            shutil.rmtree(old, ignore_errors=True)
    return dest


def load_state(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_state` (tensors via safetensors only)."""
    path = Path(path)
    for name in (TENSORS, JSON):
        if not (path / name).is_file():
            raise DataError(path, f"not a clusterneg training checkpoint: {name} is missing")
    try:
        skeleton = json.loads((path / JSON).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(path / JSON, f"invalid JSON: {exc.msg}", line=exc.lineno) from None
    return unflatten(skeleton, load_file(str(path / TENSORS)))


def state_dir_for(out: Path, state_dir: Path | None = None) -> Path:
    """Where a run's resumable state lives: ``state_dir`` when given, else ``OUT.state``
    beside the run directory (outside it, so replacing the finished run never touches it).

    Example:
        >>> state_dir_for(Path("runs/a")).as_posix()
        'runs/a.state'
        >>> state_dir_for(Path("runs/a"), Path("elsewhere")).as_posix()
        'elsewhere'
    """
    out = Path(out)
    return Path(state_dir) if state_dir is not None else out.with_name(f"{out.name}.state")


def latest_state(state_dir: Path) -> Path:
    """The newest complete checkpoint in ``state_dir`` (DataError when there is none)."""
    found = step_dirs(state_dir)
    if not found:
        raise DataError(state_dir, "no checkpoint to resume from (expected step-* "
                        "directories written with --checkpoint-every)")
    return found[-1][1]


@dataclass
class Checkpointing:
    """When and where the trainer writes resumable state, and what it resumes from.

    Args:
        state_dir: directory of the ``step-*`` checkpoints.
        every: write a checkpoint every this many optimiser steps (0: never).
        resume: continue from the newest checkpoint of ``state_dir``.
        config: the run's configuration (JSON); a resumed run must have the same one.
    """

    state_dir: Path
    every: int = 0
    resume: bool = False
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.every < 0:
            raise ConfigError(f"--checkpoint-every must be >= 0, got {self.every}")

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def save(self, step: int, payload: dict[str, Any]) -> Path:
        return save_state(self.state_dir, step, {"config": self.config, **payload})

    def load(self, step: int | None = None) -> dict[str, Any]:
        """The payload of the newest checkpoint (or of ``step``), after checking the run
        configuration matches."""
        return load_state(self.check(step))

    def steps(self) -> list[int]:
        """The steps of the complete checkpoints in ``state_dir``, oldest first."""
        return [s for s, _ in step_dirs(self.state_dir)]

    def check(self, step: int | None = None) -> Path:
        """The newest checkpoint (or that of ``step``), if its run configuration is this
        run's (else ConfigError); reads only its JSON, so a mismatch is reported before any
        data is loaded."""
        path = latest_state(self.state_dir) if step is None else \
            Path(self.state_dir) / f"step-{step:09d}"
        try:
            skeleton = json.loads((path / JSON).read_text(encoding="utf-8")).get("config", {})
        except FileNotFoundError:
            raise DataError(path, "no such checkpoint") from None
        except json.JSONDecodeError as exc:
            raise DataError(path / JSON, f"invalid JSON: {exc.msg}", line=exc.lineno) from None
        saved = json.loads(json.dumps(unflatten(skeleton, {}), default=str))
        now = json.loads(json.dumps(self.config, default=str))
        diff = [f"{k}.{f}" for k in sorted(set(saved) | set(now))
                for f in sorted(set(saved.get(k) or {}) | set(now.get(k) or {}))
                if (saved.get(k) or {}).get(f) != (now.get(k) or {}).get(f)]
        if diff:
            raise ConfigError(f"cannot resume from {path}: the run configuration differs "
                              f"({', '.join(diff)}); use the same options as the first run")
        return path


# ---- what the trainer saves and restores ------------------------------------------------

_RESULT_FIELDS = ("epochs", "best_epoch", "best_valid", "train_seconds", "examples", "steps")


def training_payload(model: torch.nn.Module, optimizer: torch.optim.Optimizer, sampler: Any,
                     result: Any, loop: LoopState) -> dict[str, Any]:
    """Everything a resumed run needs, as one nested state (see :func:`flatten`)."""
    return {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "sampler": sampler.state_dict(), "rng": rng_state(), "loop": loop.to_dict(),
        "result": {k: getattr(result, k) for k in _RESULT_FIELDS},
    }


def restore_training(payload: dict[str, Any], model: torch.nn.Module,
                     optimizer: torch.optim.Optimizer, sampler: Any, result: Any) -> LoopState:
    """Load a :func:`training_payload` into freshly built objects; returns the loop state."""
    model.load_state_dict(payload["model"])  # copies into the parameters' device
    optimizer.load_state_dict(payload["optimizer"])  # moves its state to the params' device
    sampler.load_state_dict(payload["sampler"])  # pool/FIFO copy onto the sampler's device
    set_rng_state(payload["rng"])
    for k in _RESULT_FIELDS:
        setattr(result, k, payload["result"][k])
    return LoopState.from_dict(payload["loop"])
