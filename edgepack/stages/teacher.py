"""Resolve and inspect the teacher (edgepack/teacher.py): a local HF directory or the built-in MiniLM."""

from __future__ import annotations

import dataclasses

from ..context import BuildContext
from ..teacher import resolve_teacher


def run(ctx: BuildContext) -> BuildContext:
    o = ctx.options
    return dataclasses.replace(ctx, teacher=resolve_teacher(o.model, o.task, o.allow_pickle))
