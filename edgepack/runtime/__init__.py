"""The on-device wrapper. `edgepack_runtime.py` is copied verbatim into every bundle."""

from .edgepack_runtime import (  # noqa: F401
    Bundle,
    BundleFormatError,
    BundleIntegrityError,
    InputError,
    load_bundle,
)
