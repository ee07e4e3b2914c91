"""The build, top to bottom. Each stage is `run(ctx) -> ctx`; see ../shared/DESIGN.md."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from . import progress
from .cache import default_cache_root
from .config import BuildOptions
from .context import BuildContext
from .errors import UsageError
from .stages import bundle, data, export, quantize, student, teacher, validate
from .targets import load_target

STAGES = (
    ("load teacher", teacher.run),
    ("read data", data.run),
    ("build student", student.run),
    ("export", export.run),
    ("quantise", quantize.run),
    ("assemble bundle", bundle.assemble),
    ("validate", validate.run),
    ("write bundle", bundle.run),
)


class Interrupted(UsageError):
    """SIGINT/SIGTERM during a build: staging removed, --out untouched."""

    exit_code = 130


@contextlib.contextmanager
def _signals_raise():
    """Turn SIGTERM into an exception so `finally` blocks clean up exactly as for Ctrl-C."""

    def handler(signum, frame):
        raise Interrupted(f"interrupted by {signal.Signals(signum).name}; nothing was written")

    old = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            old[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


@contextlib.contextmanager
def _out_lock(out: Path):
    """Two builds into one --out at once: the second fails fast instead of racing the rename."""
    out.parent.mkdir(parents=True, exist_ok=True)
    lock_path = out.parent / f".{out.name}.edgepack.lock"
    fh = open(lock_path, "w")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise UsageError(f"--out {out}: another edgepack build is writing there") from None
    try:
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()
        with contextlib.suppress(OSError):
            lock_path.unlink()


def build(options: BuildOptions) -> BuildContext:
    target = load_target(options.target)
    out = options.out_dir(target.name)
    bundle.check_out_dir(out, options.force)
    work = Path(options.cache_dir) if options.cache_dir else default_cache_root()
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cache dir {work}: {exc.strerror}") from None
    reporter = progress.current()
    with _signals_raise(), _out_lock(out):
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.edgepack-tmp-", dir=out.parent))
        except OSError as exc:
            raise UsageError(f"--out {out}: cannot write there ({exc.strerror})") from None
        ctx = BuildContext(options=options, target=target, work_dir=work, staging_dir=staging, out_dir=out)
        try:
            for name, stage in STAGES:
                reporter.stage_started(name)
                t0 = time.perf_counter()
                ctx = stage(ctx)
                seconds = time.perf_counter() - t0
                ctx = dataclasses.replace(ctx, timings={**ctx.timings, name: round(seconds, 2)})
                reporter.stage_finished(name, seconds)
            bundle.publish(staging, out)
        except OSError as exc:
            raise UsageError(f"cannot write the bundle: {exc.strerror or exc}") from None
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return dataclasses.replace(ctx, staging_dir=out)


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
