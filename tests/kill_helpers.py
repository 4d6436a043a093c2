"""Kill a training process (and the processes it started) once it has written resumable
state: the shared set-up of the SIGKILL-then-resume tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from clusterneg.train.state import step_dirs


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (torchrun starts its workers in sessions of their own,
    so killing the launcher's process group would leave them running)."""
    tasks = Path(f"/proc/{pid}/task")
    return [int(c) for t in tasks.iterdir() for c in (t / "children").read_text().split()]


def kill_after_checkpoint(cmd: list[str], env: dict[str, str], state_dirs: list[Path],
                          timeout: float = 200) -> None:
    """Run ``cmd`` until every one of ``state_dirs`` holds a complete checkpoint, then
    SIGKILL it and its children; fails if it ended before it could be killed."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while (not all(step_dirs(d) for d in state_dirs) and proc.poll() is None
           and time.monotonic() < deadline):
        time.sleep(0.01)
    alive = proc.poll() is None
    if alive:
        for pid in children(proc.pid) + [proc.pid]:
            os.kill(pid, signal.SIGKILL)
    proc.wait()
    assert alive, "training finished before it could be killed"
