"""The publishing transaction (edgepack/publish.py): permissions of the published bundle, staging left
by a killed build, and what `build()` returns. Interruption and locking are in test_reliability*.py."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from reliability_helpers import leftovers, snapshot

import edgepack
from edgepack.publish import staged_output


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    """Set a umask for one test, restoring the process's own afterwards."""
    previous = os.umask(0o022)
    os.umask(previous)

    def set_(mask: int) -> None:
        os.umask(mask)

    yield set_
    os.umask(previous)


def test_built_bundle_is_readable_by_others(tiny_model, tiny_target, tiny_data, cache_dir, tmp_path, umask):
    # Before the fix the bundle directory kept mkdtemp's 0700: another user, a Docker COPY or a web
    # server could not read it.
    umask(0o022)
    out = tmp_path / "bundle"
    ctx = edgepack.build(target=str(tiny_target), model=str(tiny_model), data=(str(tiny_data),), out=out, cache_dir=cache_dir)
    assert mode(out) == 0o755
    assert {mode(p) for p in out.rglob("*") if p.is_file()} == {0o644}
    # The context names the published bundle; staging is gone (before: staging_dir held --out).
    assert ctx.bundle_dir == out and ctx.staging_dir != out and not ctx.staging_dir.exists()


@pytest.mark.parametrize("mask,dirs,files", [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640), (0o077, 0o700, 0o600)])
def test_permissions_follow_the_umask(tmp_path, umask, mask, dirs, files):
    umask(mask)
    out = tmp_path / "out"
    with staged_output(out) as staging:
        (staging / "sub").mkdir()
        (staging / "sub" / "a.txt").write_text("a")
        private = staging / "private.bin"
        private.write_bytes(b"x")
        private.chmod(0o600)  # as a library's temp file would be
    assert mode(out) == dirs and mode(out / "sub") == dirs
    assert mode(out / "sub" / "a.txt") == files and mode(out / "private.bin") == files


def test_staging_left_by_a_killed_build_is_reaped(tmp_path):
    out = tmp_path / "bundle"
    stale = tmp_path / ".bundle.edgepack-tmp-killed1"
    (stale / "deep").mkdir(parents=True)
    (stale / "deep" / "model.onnx").write_bytes(b"\0" * 1000)
    other = tmp_path / ".other.edgepack-tmp-x"  # another --out's staging is not ours to remove
    other.mkdir()
    with staged_output(out) as staging:
        (staging / "edgepack.json").write_text("{}")
        assert not stale.exists()
    assert other.exists() and leftovers(tmp_path) == [".other.edgepack-tmp-x"]


def test_a_failure_inside_leaves_out_untouched_and_no_staging(tiny_bundle_ro, tmp_path):
    import shutil

    out = tmp_path / "bundle"
    shutil.copytree(tiny_bundle_ro, out)
    before = snapshot(out)
    with pytest.raises(RuntimeError):
        with staged_output(out) as staging:
            (staging / "edgepack.json").write_text("{}")
            raise RuntimeError("a stage failed")
    assert snapshot(out) == before and leftovers(tmp_path) == []
