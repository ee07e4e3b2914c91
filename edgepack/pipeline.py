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
    """SIGINT/SIGTERM during a build: staging removed, --out untouched.

    Exit code 128 + signal number, the shell convention: 130 for SIGINT (Ctrl-C), 143 for SIGTERM.
    """

    exit_code = 130

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.exit_code = 128 + int(signum)
        self.signal_name = signal.Signals(signum).name


_deferral = {"depth": 0, "pending": None, "received": None}  # signals arrive in the main thread only


@contextlib.contextmanager
def _signals_deferred():
    """Hold SIGINT/SIGTERM while renaming onto --out or removing staging: a signal between the two
    renames of `publish` would otherwise leave --out missing. A held signal is raised on exit.
    (Done in Python rather than with pthread_sigmask: other threads would still take the signal.)"""
    _deferral["depth"] += 1
    try:
        yield
    finally:
        _deferral["depth"] -= 1
        if _deferral["depth"] == 0 and _deferral["pending"] is not None:
            signum, _deferral["pending"] = _deferral["pending"], None
            raise Interrupted(f"interrupted by {signal.Signals(signum).name}; nothing was written", signum)


@contextlib.contextmanager
def _signals_raise():
    """Turn SIGTERM into an exception so `finally` blocks clean up exactly as for Ctrl-C."""

    def handler(signum, frame):
        _deferral["received"] = signum
        if _deferral["depth"]:
            _deferral["pending"] = signum
            return
        raise Interrupted(f"interrupted by {signal.Signals(signum).name}; nothing was written", signum)

    old = {}
    _deferral["received"] = None
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            old[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        yield
    except Exception as exc:
        signum = _deferral["received"]
        if signum is None or isinstance(exc, Interrupted):
            raise
        # Our exception was raised inside code that wrapped it (a C extension's module init turns it
        # into "ImportError: initialization failed"): report the interruption, not the wrapper.
        raise Interrupted(f"interrupted by {signal.Signals(signum).name}; nothing was written", signum) from None
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


@contextlib.contextmanager
def _out_lock(out: Path):
    """Two builds into one --out at once: the second fails fast instead of racing the rename."""
    lock_path = out.parent / f".{out.name}.edgepack.lock"
    while True:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            fh = open(lock_path, "a")
        except OSError as exc:
            raise UsageError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise UsageError(f"--out {out}: another edgepack build is writing there") from None
        # The holder before us unlinks the lock file on exit; if we locked that unlinked file,
        # a third build may hold a fresh one at the same path. Only the file at the path counts.
        try:
            same = os.fstat(fh.fileno()).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        fh.close()
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
    # Under `accelerate launch`/torchrun only rank 0 publishes (issue #4); other ranks train, then exit.
    lock = _out_lock(out) if int(os.environ.get("RANK", "0")) == 0 else contextlib.nullcontext()
    with _signals_raise(), lock:
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
            published = False
            try:
                with _signals_deferred():
                    bundle.publish(staging, out)
                    published = True
            except Interrupted as exc:
                if not published:
                    raise
                # The signal came during the rename and is delivered after it: the new bundle is
                # complete at --out, so say that instead of "nothing was written".
                raise Interrupted(f"interrupted by {exc.signal_name}; the new bundle was already written to {out}", exc.exit_code - 128) from None
        except OSError as exc:
            raise UsageError(f"cannot write the bundle: {exc.strerror or exc}") from None
        finally:
            with _signals_deferred():
                if staging.exists():
                    shutil.rmtree(staging, ignore_errors=True)
    return dataclasses.replace(ctx, staging_dir=out)


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
