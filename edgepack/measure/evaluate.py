"""Parity, latency and size of the staged bundle, measured with the runtime it ships (not torch):
each format against the teacher and the fp32 student on the held-out texts, single-threaded latency
per sequence bucket and on the real sentences (latency.py), the model files' sizes, and how the bundle's
tokenizer splits the texts compared with the teacher's (tokenization.py)."""

from __future__ import annotations

import json

import numpy as np

from ..context import BuildContext
from ..manifest import open_staged
from ..tokenizer import tokenizer_spec
from .latency import measure_latency
from .references import build_references
from .stats import parity, plot_data
from .tokenization import coverage


def evaluate(ctx: BuildContext, references: dict | None = None, reps: int | None = None) -> tuple[dict, dict]:
    """(metrics, references). Pass the references back in to skip the torch pass (the int8 fallback
    re-measures many times)."""
    texts = list(ctx.texts.validation)
    labels = ctx.texts.validation_labels
    task = ctx.teacher.task
    reps = reps or (10 if ctx.options.quick else 30)
    metrics = {"validation_texts": len(texts), "validation_source": ctx.texts.source, "formats": {},
               "tokenization": tokenization_vs_teacher(ctx, texts)}
    for fmt in ctx.target.formats:
        bundle = open_staged(ctx, fmt, threads=ctx.target.threads)
        if references is None:
            references = build_references(ctx.teacher, ctx.student, texts, bundle.tokenizer, bundle.max_length,
                                          ctx.options.allow_pickle)
        got = bundle.outputs(texts)
        sizes = [(ctx.staging_dir / a.path).stat().st_size for a in ctx.artifacts if a.format == fmt]
        buckets = [b for b in ctx.target.sequence_buckets if b <= bundle.max_length] or [bundle.max_length]
        metrics["formats"][fmt] = {
            "vs_teacher": parity(task, got, references["teacher"], labels),
            "vs_student_fp32": parity(task, got, references["student_fp32"]),
            "latency": measure_latency(bundle, texts[: max(reps, 1)], buckets, reps, keep_samples=True),
            "size_bytes": sum(sizes),
            "largest_file_bytes": max(sizes),
            "plot": plot_data(task, got, references["teacher"]),
        }
    if labels is not None and task == "text-classification":
        metrics["teacher_accuracy"] = float((references["teacher"].argmax(1) == np.asarray(labels)).mean())
        metrics["student_fp32_accuracy"] = float((references["student_fp32"].argmax(1) == np.asarray(labels)).mean())
    # the fp32 student's own figures: a teacher gate it misses is not int8's doing (gates.GateFailure.student_misses)
    metrics["student_fp32_vs_teacher"] = parity(task, references["student_fp32"], references["teacher"])
    return metrics, references


def tokenization_vs_teacher(ctx: BuildContext, texts) -> dict:
    """The staged tokenizer against the teacher's on the validation texts (all zeros unless the
    vocabulary was pruned); `[budget] max_retokenized_words` gates on `retokenized_words`."""
    bundle_json = json.loads((ctx.staging_dir / "tokenizer.json").read_text(encoding="utf-8"))
    teacher_json = tokenizer_spec(ctx.teacher.path) if ctx.student.vocab_pruned else bundle_json
    return {"vocab_pruned": ctx.student.vocab_pruned, **coverage(teacher_json, bundle_json, texts)}
