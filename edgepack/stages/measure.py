"""Measure the staged bundle with the runtime it ships: parity, latency, size (edgepack/measure/)."""

from __future__ import annotations

import dataclasses

from ..context import BuildContext
from ..measure.evaluate import evaluate


def run(ctx: BuildContext) -> BuildContext:
    metrics, references = evaluate(ctx)
    return dataclasses.replace(ctx, metrics=metrics, references=references)
