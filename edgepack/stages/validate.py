"""The gate: the profile's [budget] against the measured figures. A failure leaves --out untouched
(exit 1) and writes its report to the work dir."""

from __future__ import annotations

import dataclasses

from ..context import BuildContext
from ..errors import GateFailed
from ..measure.gates import gate_failures
from ..report import write_failed_report


def run(ctx: BuildContext) -> BuildContext:
    fails = gate_failures(ctx.teacher.task, ctx.target.budget, ctx.metrics)
    gates = {"passed": not fails, "failures": [str(f) for f in fails]}
    ctx = dataclasses.replace(ctx, metrics={**ctx.metrics, "gates": gates})
    if fails:
        report = write_failed_report(ctx)
        raise GateFailed(f"validation gate failed: {'; '.join(gates['failures'])} (report: {report}); {ctx.out_dir} was not changed",
                         failures=tuple(fails))
    return ctx
