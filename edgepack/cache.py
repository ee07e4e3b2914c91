"""Content-addressed work directories so unchanged stages are re-used across builds.

A stage asks for `StageDir(ctx.work_dir, "export", key)`; the key is a hash of everything that stage's
output depends on. A stage writes into a private staging directory that is renamed into place with its
DONE marker (see `StageDir`), so an interrupted stage is redone, never half-used.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from .errors import UsageError


def default_cache_root() -> Path:
    env = os.environ.get("EDGEPACK_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "edgepack"


def work_dir(cache_dir: Path | None) -> Path:
    """The build's cache (`--cache-dir`, else $EDGEPACK_CACHE or ~/.cache/edgepack), created if needed."""
    work = Path(cache_dir) if cache_dir else default_cache_root()
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cache dir {work}: {exc.strerror}") from None
    return work


def hash_parts(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def hash_dir(path: Path) -> str:
    """Hash of a model directory's files (names and bytes)."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(path).rglob("*") if p.is_file() and ".git" not in p.parts):
        h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:20]


class StageDir:
    """One stage's cache directory, `<root>/<stage>-<key>`.

    A stage that is not cached yet writes into a private staging directory (`.<stage>-<key>.<pid>.*`,
    `path`) that `mark_done` renames into place. Two processes that build the same key at once (the ranks
    of a `torch.distributed.run` build, or two builds sharing a cache) therefore never write into, or
    delete, each other's files: the first rename wins and the other's output, equal by its key, is dropped.
    Cleaning a half-written directory in place, as this class once did, removed a directory that another
    rank was writing (CI, test_two_processes_train_the_shape_rank_0_timed)."""

    def __init__(self, root: Path, stage: str, key: str):
        self.final = Path(root) / f"{stage}-{key}"
        self.final.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(self.final)  # also once published: a writer killed while another won leaves one
        self.done = (self.final / "DONE").is_file()
        if self.done:
            self.path = self.final
            return
        self.path = self.final.parent / f".{self.final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        self.path.mkdir()  # (not mkdtemp: its 0700 would stay on the published directory)

    def mark_done(self) -> None:
        """Publish the staging directory as the stage's cache; `path` then names the published one."""
        if self.done:
            return
        (self.path / "DONE").write_text("ok\n")
        try:
            os.rename(self.path, self.final)
        except OSError:
            # `final` exists: another process published the key first, or an interrupted run of an older
            # edgepack wrote in place. Decide under a lock: checked without one, two writers could both
            # see the old leftover and the second delete what the first had just published there.
            # A published key never changes, so only the leftover case needs the lock.
            if not (self.final / "DONE").is_file():
                with _replace_lock(self.final):
                    if not (self.final / "DONE").is_file():  # still the old leftover: replace it
                        shutil.rmtree(self.final, ignore_errors=True)
                        try:
                            os.rename(self.path, self.final)
                        except OSError:  # a writer that needed no lock published meanwhile: keep its copy
                            pass
            shutil.rmtree(self.path, ignore_errors=True)  # our copy, unless it was the one renamed
        self.path, self.done = self.final, True


@contextlib.contextmanager
def _replace_lock(final: Path):
    with open(final.parent / f".{final.name}.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _remove_abandoned(final: Path) -> None:
    """Delete staging directories of `final` whose process is gone (an interrupted build's leftovers);
    those of live processes are someone's work in progress."""
    for d in final.parent.glob(f".{final.name}.*"):
        pid = d.name[len(final.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True
