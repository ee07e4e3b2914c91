"""Finish the staged bundle: golden cases, the runtime, the reports, and the manifest, written here
and only here. Publishing it onto --out is publish.py's."""

from __future__ import annotations

from importlib import resources

from .. import report
from ..context import BuildContext
from ..golden import GOLDEN_TOLERANCE, golden_cases
from ..manifest import manifest_for, manifest_metrics, open_staged, write_manifest


def run(ctx: BuildContext) -> BuildContext:
    manifest = manifest_for(ctx)
    bundles = {fmt: open_staged(ctx, fmt) for fmt in ctx.target.formats}
    manifest["golden"] = golden_cases(bundles, ctx.texts.validation)
    manifest["golden_tolerance"] = GOLDEN_TOLERANCE[ctx.teacher.task]
    manifest["metrics"] = manifest_metrics(ctx.metrics)
    runtime_src = resources.files("edgepack.runtime").joinpath("edgepack_runtime.py")
    (ctx.staging_dir / "edgepack_runtime.py").write_text(runtime_src.read_text(encoding="utf-8"), encoding="utf-8")
    report.write_reports(ctx, ctx.staging_dir)
    write_manifest(ctx.staging_dir, manifest)
    return ctx
