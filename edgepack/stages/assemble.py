"""What the runtime needs beside the models, so the staged bundle can be measured: tokenizer.json,
vocab.txt and (classifiers) labels.txt. The manifest is written once, by the bundle stage."""

from __future__ import annotations

from ..context import BuildContext
from ..tokenizer import write_tokenizer


def run(ctx: BuildContext) -> BuildContext:
    write_tokenizer(ctx.student.tokenizer_dir, ctx.staging_dir)
    if ctx.teacher.labels:
        (ctx.staging_dir / "labels.txt").write_text("".join(f"{x}\n" for x in ctx.teacher.labels), encoding="utf-8")
    return ctx
