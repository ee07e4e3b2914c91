"""Accuracy-aware int8 fallback (issue #5): when only parity gates fail, re-quantise with the most
sensitive layers in float and measure again (edgepack/quant/fallback.py). Otherwise nothing to do."""

from __future__ import annotations

from ..context import BuildContext
from ..measure.gates import gate_failures
from ..quant import fallback


def run(ctx: BuildContext) -> BuildContext:
    fails = gate_failures(ctx.teacher.task, ctx.target.budget, ctx.metrics)
    if not fallback.applies(ctx.target.quantize, fails):
        return ctx
    return fallback.recover(ctx, fails)
