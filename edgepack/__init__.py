"""edgepack: a transformer text model in, a small, fast, verified on-device bundle out.

    import edgepack
    ctx = edgepack.build(target="android-arm64")          # same as `edgepack build`
    bundle = edgepack.load_bundle("dist/android-arm64")   # numpy + tokenizers + ORT/LiteRT
    bundle(["a sentence"])
    edgepack.check("dist/android-arm64").passed
"""

from .runtime.edgepack_runtime import load_bundle

__version__ = "0.1.0"


def build(**options):
    """Run a build; keyword arguments are those of `edgepack.config.BuildOptions`."""
    from .config import BuildOptions
    from .pipeline import build as _build

    return _build(BuildOptions(**options))


# Import the submodule before defining `check`: importing `edgepack.check` later would otherwise
# rebind the package attribute to the module, and `edgepack.check(path)` would stop being callable.
from . import check as _check_module  # noqa: E402


def check(path):
    return _check_module.check_bundle(path)


__all__ = ["build", "check", "load_bundle", "__version__"]
