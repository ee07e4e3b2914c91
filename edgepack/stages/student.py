"""The fp32 student: the teacher itself (`strategy = "teacher"`) or a distilled one (edgepack/student/)."""

from __future__ import annotations

import dataclasses

from .. import web
from ..context import BuildContext
from ..student import refuse_unsupported_steps, teacher_itself


def run(ctx: BuildContext) -> BuildContext:
    if ctx.target.layout == web.LAYOUT:  # before any training time is spent
        web.check_teacher(ctx.teacher.pooling, ctx.teacher.dense, ctx.teacher.task)
        web.vendored_sources()  # the demo's JS runtime is installed (else one line naming `npm ci`)
    spec = ctx.target.student_for(ctx.teacher.task)
    o = ctx.options
    shape_budget = o.max_mb or o.max_latency_ms or o.min_speedup
    if spec.strategy == "teacher" and not (o.student_layers or shape_budget):  # a shape budget asks for a student
        return dataclasses.replace(ctx, student=teacher_itself(ctx.teacher))
    refuse_unsupported_steps(ctx.teacher, spec)  # before any training time is spent
    from ..student.distil import make_student  # issue #4: distillation + pruning; heavy, imported only when used

    return dataclasses.replace(ctx, student=make_student(ctx))
