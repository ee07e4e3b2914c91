"""The stage cache (edgepack/cache.py) when two processes build the same key at once: the ranks of a
`torch.distributed.run` build, or two builds sharing ~/.cache/edgepack."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

from edgepack import cache
from edgepack.cache import StageDir


def test_a_second_writer_leaves_the_first_ones_files_alone(tmp_path):
    # The CI failure: rank 1 opened the stage while rank 0 was writing it, took rank 0's directory for an
    # interrupted run's leftovers and deleted it; rank 0's save then found no directory.
    first = StageDir(tmp_path, "teacher-outputs", "k")
    (first.path / "outputs.safetensors").write_bytes(b"rank 0")
    second = StageDir(tmp_path, "teacher-outputs", "k")
    assert (first.path / "outputs.safetensors").read_bytes() == b"rank 0"
    assert second.path != first.path and not second.done
    (second.path / "outputs.safetensors").write_bytes(b"rank 1")
    first.mark_done()
    second.mark_done()  # the key was published meanwhile: its own copy is dropped
    final = tmp_path / "teacher-outputs-k"
    assert first.path == second.path == final and first.done and second.done
    assert (final / "outputs.safetensors").read_bytes() == b"rank 0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["teacher-outputs-k"]  # no staging left


def test_nothing_is_published_before_mark_done(tmp_path):
    stage = StageDir(tmp_path, "export", "k")
    (stage.path / "model.onnx").write_bytes(b"half")
    assert not (tmp_path / "export-k").exists()
    assert not StageDir(tmp_path, "export", "k").done  # a reader never sees a half-written stage
    stage.mark_done()
    again = StageDir(tmp_path, "export", "k")
    assert again.done and (again.path / "model.onnx").read_bytes() == b"half"


def test_staging_of_a_dead_process_is_removed_and_a_live_ones_kept(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f".distil-k.{int(gone.stdout)}.abcd1234"
    dead.mkdir()
    live = tmp_path / f".distil-k.{1}.abcd1234"  # pid 1 runs as long as the machine does
    live.mkdir()
    other_key = tmp_path / f".distil-other.{int(gone.stdout)}.abcd1234"
    other_key.mkdir()
    StageDir(tmp_path, "distil", "k")
    assert not dead.exists()
    assert live.exists() and other_key.exists()


def test_an_older_in_place_leftover_is_replaced(tmp_path):
    # Before staging directories, an interrupted stage left <stage>-<key> without DONE.
    old = tmp_path / "export-k"
    old.mkdir()
    (old / "model.onnx").write_bytes(b"interrupted")
    stage = StageDir(tmp_path, "export", "k")
    assert not stage.done
    (stage.path / "model.onnx").write_bytes(b"whole")
    stage.mark_done()
    assert (old / "model.onnx").read_bytes() == b"whole" and (old / "DONE").is_file()


def test_two_writers_replacing_an_older_leftover_never_delete_a_published_copy(tmp_path, monkeypatch):
    # Both writers find the old in-place leftover. Before the fix the second checked for DONE, then (after
    # the first had replaced the leftover and published) deleted the first one's published directory.
    final = tmp_path / "export-k"
    final.mkdir()
    (final / "model.onnx").write_bytes(b"interrupted")
    first, second = StageDir(tmp_path, "export", "k"), StageDir(tmp_path, "export", "k")
    (first.path / "model.onnx").write_bytes(b"first")
    (second.path / "model.onnx").write_bytes(b"second")
    real_rmtree, deleted_published, racer = shutil.rmtree, [], []

    def rmtree(path, *args, **kwargs):
        if Path(path) == final:
            if not racer:  # the second writer is about to remove the leftover: the first publishes now
                racer.append(threading.Thread(target=first.mark_done))
                racer[0].start()
                racer[0].join(0.5)  # it finishes here without a lock; with one it waits for ours
            if (final / "DONE").is_file():
                deleted_published.append(Path(path))
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(cache.shutil, "rmtree", rmtree)
    second.mark_done()
    racer[0].join(10)
    assert not racer[0].is_alive()
    assert deleted_published == []
    assert first.done and second.done and first.path == second.path == final and (final / "DONE").is_file()
    assert (final / "model.onnx").read_bytes() in (b"first", b"second")
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == ["export-k"]  # no staging left


def test_staging_of_a_dead_writer_is_removed_once_the_key_is_published(tmp_path):
    # Two writers, one killed: the other published the key; the dead one's staging must not stay forever.
    stage = StageDir(tmp_path, "export", "k")
    stage.mark_done()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f".export-k.{int(gone.stdout)}.abcd1234"
    dead.mkdir()
    assert StageDir(tmp_path, "export", "k").done
    assert not dead.exists()
