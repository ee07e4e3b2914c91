"""What the runtime needs beside the models, so the staged bundle can be measured: tokenizer.json,
vocab.txt and (classifiers) labels.txt; for the transformers.js layout also config.json,
tokenizer_config.json and the demo page (edgepack/web). The manifest is written once, by the bundle stage."""

from __future__ import annotations

from .. import web
from ..context import BuildContext
from ..teacher import weights_dir
from ..tokenizer import write_tokenizer


def run(ctx: BuildContext) -> BuildContext:
    write_tokenizer(ctx.student.tokenizer_dir, ctx.staging_dir)
    if ctx.target.layout == web.LAYOUT:
        web.write_layout(ctx.staging_dir, weights_dir(ctx.student.dir), ctx.student.tokenizer_dir,
                         ctx.target.quantize, ctx.max_length)
    if ctx.teacher.labels:
        (ctx.staging_dir / "labels.txt").write_text("".join(f"{x}\n" for x in ctx.teacher.labels), encoding="utf-8")
    return ctx
