"""The build, top to bottom. Each stage is `run(ctx) -> ctx`; see ../shared/DESIGN.md and docs/architecture.md."""

from __future__ import annotations

import dataclasses
import os
import time

from . import progress
from .cache import work_dir
from .config import BuildOptions
from .context import BuildContext
from .publish import staged_output
from .stages import assemble, bundle, data, export, fallback, measure, quantize, student, teacher, validate
from .targets import load_target, with_max_mb

STAGES = (
    ("load teacher", teacher.run),
    ("read data", data.run),
    ("build student", student.run),
    ("export", export.run),
    ("quantise", quantize.run),
    ("assemble bundle", assemble.run),
    ("measure", measure.run),
    ("accuracy fallback", fallback.run),
    ("validate", validate.run),
    ("write bundle", bundle.run),
)


def build(options: BuildOptions) -> BuildContext:
    target = with_max_mb(load_target(options.target), options.max_mb)
    out = options.out_dir(target.name)
    with staged_output(out, options.force) as staging:
        ctx = BuildContext(options=options, target=target, work_dir=work_dir(options.cache_dir), staging_dir=staging, out_dir=out)
        for name, stage in STAGES:
            ctx = _timed(name, stage, ctx)
    return dataclasses.replace(ctx, bundle_dir=out)


def _timed(name: str, stage, ctx: BuildContext) -> BuildContext:
    reporter = progress.current()
    reporter.stage_started(name)
    t0 = time.perf_counter()
    ctx = stage(ctx)
    seconds = time.perf_counter() - t0
    reporter.stage_finished(name, seconds)
    return dataclasses.replace(ctx, timings={**ctx.timings, name: round(seconds, 2)})


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
