"""The fp32 student. With `strategy = "teacher"` the student is the teacher itself."""

from __future__ import annotations

import dataclasses

from ..cache import hash_dir
from ..context import BuildContext
from ..modeling import weights_dir


def run(ctx: BuildContext) -> BuildContext:
    strategy = ctx.target.student.strategy
    if strategy == "teacher" and not ctx.options.student_layers:
        # The hash keys the export cache by content: new weights at the same path must re-export.
        info = {"strategy": "teacher", "description": f"the teacher itself: {ctx.teacher.description}",
                "hash": hash_dir(weights_dir(ctx.teacher.path))}
        return dataclasses.replace(ctx, student_dir=weights_dir(ctx.teacher.path), student_info=info)
    from . import distil  # issue #4: distillation + pruning; heavy, imported only when used

    return distil.run(ctx)
