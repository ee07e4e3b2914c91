"""Resolve and inspect the teacher (edgepack/teacher.py): a local HF directory or the built-in MiniLM."""

from __future__ import annotations

import dataclasses

from ..context import BuildContext
from ..teacher import resolve_teacher


def run(ctx: BuildContext) -> BuildContext:
    o = ctx.options
    teacher = resolve_teacher(o.model, o.task, o.allow_pickle)
    # the task is known from here on: a profile's [shapes.<task>] buckets apply to the rest of the build
    return dataclasses.replace(ctx, teacher=teacher, target=ctx.target.for_task(teacher.task))
