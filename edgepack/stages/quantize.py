"""Quantise the fp32 artifacts into the staging bundle, per the profile's [quantize] (edgepack/quant/)."""

from __future__ import annotations

import dataclasses

from ..context import BuildContext
from ..quant.quantize import calibration_for, quantize_artifacts


def run(ctx: BuildContext) -> BuildContext:
    return dataclasses.replace(ctx, artifacts=quantize_artifacts(ctx, calibration_for(ctx)))
