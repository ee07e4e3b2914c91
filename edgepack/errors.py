"""Typed errors. Each carries a one-line, user-facing message and the exit code the CLI uses.

Exit codes (documented in README): 0 pass, 1 a gate/parity/integrity failure, 2 bad usage or bad input,
130/143 interrupted.
"""

import signal


class EdgepackError(Exception):
    exit_code = 2

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UsageError(EdgepackError):
    """Bad flags, bad paths, bad input files: the user can fix it."""


class TargetError(UsageError):
    """A target profile that does not exist or does not validate."""


class ModelError(UsageError):
    """A model directory that cannot be loaded safely."""


class DataError(UsageError):
    """A --data file that yields no usable text."""


class GateFailed(EdgepackError):
    """A validation gate (parity, size, latency) failed; the bundle was not written."""

    exit_code = 1

    def __init__(self, message: str, failures: tuple = ()):
        super().__init__(message)
        self.failures = failures  # measure.gates.GateFailure, one per missed gate


class IntegrityError(EdgepackError):
    """A bundle whose files do not match its manifest."""

    exit_code = 1


class BundleFormatError(EdgepackError):
    """A bundle directory that is not one, or a manifest we cannot trust (newer format, escaping paths)."""

    exit_code = 2


class Interrupted(UsageError):
    """SIGINT/SIGTERM during a build: staging removed, --out untouched.

    Exit code 128 + signal number, the shell convention: 130 for SIGINT (Ctrl-C), 143 for SIGTERM.
    """

    exit_code = 130

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.exit_code = 128 + int(signum)
        self.signal_name = signal.Signals(signum).name
