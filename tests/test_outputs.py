"""Output safety: atomic writes honour the umask; ``--out`` never deletes a user's data;
the replace of a run is crash-safe and leftovers are recovered (issue 9)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from clusterneg.errors import OutputError
from clusterneg.outputs import (
    _OLD_TAG,
    _TMP_TAG,
    MARKER,
    atomic_write_json,
    atomic_write_text,
    check_output,
    is_run_dir,
    recover_output,
    write_marker,
    write_run_dir,
)


def _fill(text: str):
    return lambda d: atomic_write_text(d / "value.txt", text)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_atomic_write_honours_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_a_failed_atomic_write_keeps_the_old_file(tmp_path: Path) -> None:
    atomic_write_json(tmp_path / "a.json", {"v": 1})
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "a.json", {"v": object()})
    assert (tmp_path / "a.json").read_text() == '{\n  "v": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_users_directory_and_a_file_are_refused_and_kept(tmp_path: Path) -> None:
    user = tmp_path / "thesis"
    user.mkdir()
    (user / "chapter1.tex").write_text("precious")
    afile = tmp_path / "notes.txt"
    afile.write_text("keep me")
    before = _snapshot(tmp_path)
    for target in (user, afile):
        with pytest.raises(OutputError, match="refusing"):
            write_run_dir(target, _fill("new"), "train", overwrite=True)
    assert _snapshot(tmp_path) == before


def test_a_run_is_replaced_only_with_overwrite(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path / "run", _fill("first"), "train")
    with pytest.raises(OutputError, match="--overwrite"):
        check_output(run)
    write_run_dir(run, _fill("second"), "train", overwrite=True)
    assert (run / "value.txt").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_an_empty_directory_is_used(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    write_run_dir(tmp_path / "empty", _fill("v"), "train")
    assert is_run_dir(tmp_path / "empty")


def test_a_kill_between_renames_is_recovered(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path / "run", _fill("old"), "train")
    old = tmp_path / f".run{_OLD_TAG}"
    os.rename(run, old)  # the state a kill between the two renames leaves
    recover_output(run)
    assert (run / "value.txt").read_text() == "old" and not old.exists()


def test_a_killed_writers_half_run_is_removed_but_a_foreign_folder_kept(tmp_path: Path) -> None:
    dead = tmp_path / f".run{_TMP_TAG}999999999-abc"
    dead.mkdir()
    write_marker(dead, "train", complete=False)
    foreign = tmp_path / f".run{_TMP_TAG}1-xyz"  # no marker: not ours, never touched
    foreign.mkdir()
    recover_output(tmp_path / "run")
    assert not dead.exists() and foreign.exists()


def test_a_failed_fill_leaves_the_old_run_in_place(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path / "run", _fill("old"), "train")

    def boom(d: Path) -> None:
        atomic_write_text(d / "value.txt", "half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_run_dir(run, boom, "train", overwrite=True)
    assert (run / "value.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert (run / MARKER).is_file()


def test_an_unwritable_parent_is_refused_before_work(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="not a directory"):
        check_output(blocker / "sub" / "run")
