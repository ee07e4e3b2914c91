"""Content-addressed work directories so unchanged stages are re-used across builds.

A stage asks for `stage_dir(ctx, "export", key)`; the key is a hash of everything that stage's
output depends on. A directory is only trusted once its DONE marker exists (written last), so an
interrupted stage is redone, never half-used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
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
    def __init__(self, root: Path, stage: str, key: str):
        self.path = root / f"{stage}-{key}"
        self.done = (self.path / "DONE").is_file()
        if not self.done and self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)  # leftovers of an interrupted run
        self.path.mkdir(parents=True, exist_ok=True)

    def mark_done(self) -> None:
        (self.path / "DONE").write_text("ok\n")
        self.done = True
