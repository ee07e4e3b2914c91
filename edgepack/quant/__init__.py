"""Quantisation: the modes per format (quantize.py), static int8 calibration (calibrate.py), the layer
names exclusion lists speak (layer_names.py) and the accuracy-aware fallback (fallback.py).

`quiet` lives here because the converters and quantisers it silences are this package's (and the
exporter's) dependencies.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings


@contextlib.contextmanager
def quiet():
    """The converters print pages of progress and warnings; the CLI shows its own progress."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                yield
        finally:
            logging.disable(previous)
