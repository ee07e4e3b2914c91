"""Typed errors. Each carries a one-line, user-facing message and the exit code the CLI uses.

Exit codes (documented in README): 0 pass, 1 a gate/parity/integrity failure, 2 bad usage or bad input.
"""


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


class IntegrityError(EdgepackError):
    """A bundle whose files do not match its manifest."""

    exit_code = 1


class BundleFormatError(EdgepackError):
    """A bundle directory that is not one, or a manifest we cannot trust (newer format, escaping paths)."""

    exit_code = 2
