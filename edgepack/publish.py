"""Publishing a bundle as one transaction:

    with staged_output(out, force) as staging:
        ...write the bundle into staging...

On entry: refuse an --out that is not a bundle (unless --force), take a lock beside --out so a second
build into it fails fast instead of racing the rename, reap staging that a SIGKILLed build left there
(the OOM killer, `kill -9`: no `finally` ran), and turn SIGINT/SIGTERM into `Interrupted` so cleanup
runs as for any error (never inside an import: see `_signals_raise`). On success: give the bundle
ordinary permissions and rename it onto --out, holding signals so --out is never missing. Always:
remove staging. A previous bundle at --out stays byte-identical until the new one is complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from .distributed import is_main_process
from .errors import Interrupted, UsageError
from .runtime.edgepack_runtime import MANIFEST

STAGING_MARK = ".edgepack-tmp-"


def check_out_dir(out: Path, force: bool) -> None:
    """Refuse to replace something that is not a bundle unless --force."""
    if not out.exists():
        parent = out.parent if str(out.parent) else Path(".")
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"--out {out}: parent is not a directory")
        return
    if not out.is_dir():
        raise UsageError(f"--out {out}: exists and is a file")
    if (out / MANIFEST).is_file() or not any(out.iterdir()) or force:
        return
    raise UsageError(f"--out {out}: exists and is not an edgepack bundle; pass --force to replace it")


_deferral = {"depth": 0, "pending": None, "received": None}  # signals arrive in the main thread only


def _interrupted(signum: int) -> Interrupted:
    return Interrupted(f"interrupted by {signal.Signals(signum).name}; nothing was written", signum)


@contextlib.contextmanager
def _signals_deferred():
    """Hold SIGINT/SIGTERM while renaming onto --out or removing staging: a signal between the two
    renames of `_publish` would otherwise leave --out missing. A held signal is raised on exit.
    (Done in Python rather than with pthread_sigmask: other threads would still take the signal.)"""
    _deferral["depth"] += 1
    try:
        yield
    finally:
        _deferral["depth"] -= 1
        if _deferral["depth"] == 0 and _deferral["pending"] is not None:
            signum, _deferral["pending"] = _deferral["pending"], None
            raise _interrupted(signum)


IMPORT_RETRY_S = 0.05  # how often a signal that landed in an import is delivered again


def _importing(frame) -> bool:
    """True while the main thread is inside an import (importlib's frames are on its stack)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False


def _deliver_again(signum: int) -> None:
    """Send `signum` to this process again shortly; the handler then runs between bytecodes again."""
    timer = threading.Timer(IMPORT_RETRY_S, os.kill, (os.getpid(), signum))
    timer.daemon = True
    timer.start()


@contextlib.contextmanager
def _signals_raise():
    """Turn SIGTERM into an exception so `finally` blocks clean up exactly as for Ctrl-C."""

    def handler(signum, frame):
        _deferral["received"] = signum
        if _deferral["depth"]:
            _deferral["pending"] = signum
            return
        if _importing(frame):
            # Never raise inside an import: a C extension's initialisation that calls back into Python
            # (onnx's, importing onnxruntime.quantization at the start of the quantise stage) crashed the
            # process with SIGSEGV/SIGABRT in 7 of 104 SIGTERMs sent 15-33 ms into that stage, before any
            # cleanup or message. The signal comes back every IMPORT_RETRY_S and is raised once the
            # import is over (imports take at most a few seconds).
            _deliver_again(signum)
            return
        raise _interrupted(signum)

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
        raise _interrupted(signum) from None
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


def _reap_killed_staging(out: Path) -> None:
    """Staging of builds killed with SIGKILL (each up to a whole bundle). Only called under the lock,
    when no other build can be writing into one."""
    for stale in out.parent.glob(f".{glob.escape(out.name)}{STAGING_MARK}*"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _set_permissions(root: Path) -> None:
    """mkdtemp creates 0700 and some writers use private temp files: give the bundle what any other
    directory gets (0755 / 0644 under the usual umask 022) so other users, a Docker COPY or a web
    server can read it."""
    mask = _umask()
    root.chmod(0o777 & ~mask)
    for path in root.rglob("*"):
        if not path.is_symlink():
            path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


def _make_staging(out: Path) -> Path:
    try:
        return Path(tempfile.mkdtemp(prefix=f".{out.name}{STAGING_MARK}", dir=out.parent))
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write there ({exc.strerror})") from None


def _publish(staging: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{staging.name}"
        out.rename(old)
    try:
        staging.rename(out)
    except OSError:
        if old is not None:
            old.rename(out)  # put the previous bundle back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_output(out: Path, force: bool = False):
    """Yield an empty staging dir beside `out`; on a clean exit it becomes `out`. See the module doc."""
    check_out_dir(out, force)
    # Under torchrun/accelerate every rank runs the build; only rank 0 (issue #4) owns --out.
    main = is_main_process()
    with _signals_raise(), (_out_lock(out) if main else contextlib.nullcontext()):
        if main:
            _reap_killed_staging(out)
        staging = _make_staging(out)
        try:
            yield staging
            _set_permissions(staging)
            published = False
            try:
                with _signals_deferred():
                    _publish(staging, out)
                    published = True
            except Interrupted as exc:
                if not published:
                    raise
                # The signal came during the rename and is delivered after it: the new bundle is
                # complete at --out, so say that instead of "nothing was written".
                raise Interrupted(f"interrupted by {exc.signal_name}; the new bundle was already written to {out}",
                                  exc.exit_code - 128) from None
        except OSError as exc:
            raise UsageError(f"cannot write the bundle: {exc.strerror or exc}") from None
        finally:
            with _signals_deferred():
                if staging.exists():
                    shutil.rmtree(staging, ignore_errors=True)
