"""Validate the staged bundle with the runtime wrapper itself (not torch), then apply the gates.

Parity: each shipped format against the teacher (torch fp32) and the fp32 student (torch), on the
held-out texts. Latency: single thread, p50/p95 per sequence bucket and on the real sentences.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from ..context import BuildContext
from ..errors import GateFailed
from ..stats import cosine_rows, latency_percentiles
from ..modeling import load_hf_model, run_torch, wrap
from ..runtime.edgepack_runtime import load_bundle


def parity(task: str, got: np.ndarray, ref: np.ndarray, labels=None) -> dict:
    if task == "text-classification":
        agree = got.argmax(1) == ref.argmax(1)
        out = {"agreement": float(agree.mean()), "max_abs_logit_diff": float(np.abs(got - ref).max())}
        if labels is not None:
            out["accuracy"] = float((got.argmax(1) == np.asarray(labels)).mean())
        return out
    cos = cosine_rows(got, ref)
    return {"cosine_min": float(cos.min()), "cosine_mean": float(cos.mean()), "cosine_p05": float(np.percentile(cos, 5))}


def time_calls(fn, reps: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def latency(bundle, buckets, texts, reps: int) -> dict:
    """Per bucket: a full-length input; 'sentences': each validation text alone (batch 1)."""
    result = {"buckets": {}}
    ids_pool = [i for i in bundle.encode(list(texts))]
    filler = max(ids_pool, key=len) if ids_pool else [0]
    for seq in buckets:
        ids = (filler * (seq // max(len(filler), 1) + 1))[:seq]
        samples = time_calls(lambda: bundle.run_ids([ids]), reps)
        # raw samples kept for report.html's latency distribution plot
        result["buckets"][str(seq)] = {**latency_percentiles(samples), "samples_ms": [round(x, 4) for x in samples]}
    sample = list(texts)[: max(reps, 1)]
    per_sentence = []
    for t in sample:
        per_sentence += time_calls(lambda: bundle.outputs([t]), 1, warmup=0)
    result["sentences"] = {**latency_percentiles(per_sentence), "samples_ms": [round(x, 4) for x in per_sentence]}
    result["sentence_tokens_mean"] = float(np.mean([len(x) for x in ids_pool])) if ids_pool else 0.0
    return result


def _teacher_tokenizer(ctx: BuildContext, bundle_tokenizer):
    """A student with a pruned vocabulary (issue #4) has its own ids; the teacher needs its own tokenizer."""
    from pathlib import Path

    from ..modeling import hf_tokenizer, weights_dir

    if ctx.tokenizer_dir is None or Path(ctx.tokenizer_dir) == weights_dir(ctx.teacher.path):
        return bundle_tokenizer
    return hf_tokenizer(ctx.teacher.path)


def reference_outputs(ctx: BuildContext, texts, tokenizer, max_length: int) -> dict:
    t = ctx.teacher
    teacher_head = wrap(load_hf_model(t.path, t.task, ctx.options.allow_pickle), t.task, t.family, t.pooling, t.normalize)
    refs = {"teacher": run_torch(teacher_head, _teacher_tokenizer(ctx, tokenizer), texts, max_length)}
    if str(ctx.student_dir) == str(t.path) or ctx.student_info.get("strategy") == "teacher":
        refs["student_fp32"] = refs["teacher"]
    else:
        student_head = wrap(load_hf_model(ctx.student_dir, t.task, ctx.options.allow_pickle), t.task, t.family, t.pooling, t.normalize)
        refs["student_fp32"] = run_torch(student_head, tokenizer, texts, max_length)
    return refs


def evaluate(ctx: BuildContext, reps: int | None = None, refs_cache: dict | None = None) -> dict:
    """`refs_cache` (a dict) keeps the torch reference outputs across calls (the int8 fallback re-evaluates)."""
    texts = list(ctx.texts.validation)
    labels = ctx.texts.validation_labels
    reps = reps or (10 if ctx.options.quick else 30)
    metrics = {"validation_texts": len(texts), "validation_source": ctx.texts.source, "formats": {}}
    refs = (refs_cache or {}).get("refs")
    for fmt in ctx.target.formats:
        bundle = load_bundle(ctx.staging_dir, format=fmt, threads=ctx.target.threads)
        if refs is None:
            refs = reference_outputs(ctx, texts, bundle.tokenizer, bundle.max_length)
            if refs_cache is not None:
                refs_cache["refs"] = refs
        got = bundle.outputs(texts)
        entry = {
            "vs_teacher": parity(ctx.teacher.task, got, refs["teacher"], labels),
            "vs_student_fp32": parity(ctx.teacher.task, got, refs["student_fp32"]),
            "latency": latency(bundle, [b for b in ctx.target.sequence_buckets if b <= bundle.max_length] or [bundle.max_length], texts, reps),
            "size_bytes": sum((ctx.staging_dir / a.path).stat().st_size for a in ctx.artifacts if a.format == fmt),
            "largest_file_bytes": max((ctx.staging_dir / a.path).stat().st_size for a in ctx.artifacts if a.format == fmt),
        }
        from ..html_report import plot_data  # per-sentence points for report.html

        entry["plot"] = plot_data(ctx.teacher.task, got, refs["teacher"])
        metrics["formats"][fmt] = entry
    if labels is not None and ctx.teacher.task == "text-classification":
        metrics["teacher_accuracy"] = float((refs["teacher"].argmax(1) == np.asarray(labels)).mean())
        metrics["student_fp32_accuracy"] = float((refs["student_fp32"].argmax(1) == np.asarray(labels)).mean())
    if ctx.teacher.task == "sentence-embedding":
        metrics["student_fp32_vs_teacher"] = parity(ctx.teacher.task, refs["student_fp32"], refs["teacher"])
    return metrics


def gate_failures(ctx: BuildContext, metrics: dict) -> list[str]:
    b = ctx.target.budget
    fails = []
    for fmt, m in metrics["formats"].items():
        mb = m["largest_file_bytes"] / 1e6
        if mb > b.max_size_mb:
            fails.append(f"{fmt}: model file {mb:.1f} MB > max_size_mb {b.max_size_mb}")
        if ctx.teacher.task == "text-classification":
            checks = [("vs_teacher", "agreement", b.min_agreement_vs_teacher), ("vs_student_fp32", "agreement", b.min_agreement_vs_student)]
        else:
            checks = [
                ("vs_teacher", "cosine_min", b.min_cosine_vs_teacher),
                ("vs_teacher", "cosine_mean", b.min_mean_cosine_vs_teacher),
                ("vs_student_fp32", "cosine_min", b.min_cosine_vs_student),
            ]
        for ref, key, floor in checks:
            value = m[ref][key]
            if floor and value < floor:
                fails.append(f"{fmt}: {key} {ref} {value:.4f} < {floor}")
        if b.max_latency_ms_p95:
            worst = max(x["p95_ms"] for x in m["latency"]["buckets"].values())
            if worst > b.max_latency_ms_p95:
                fails.append(f"{fmt}: latency p95 {worst:.1f} ms > {b.max_latency_ms_p95}")
    return fails


def run(ctx: BuildContext) -> BuildContext:
    refs_cache: dict = {}
    metrics = evaluate(ctx, refs_cache=refs_cache)
    fails = gate_failures(ctx, metrics)
    from .. import fallback

    if fallback.applies(ctx, fails):
        # Accuracy-aware fallback (issue #5): keep the most sensitive layers in float until the gate passes.
        ctx, metrics, fails = fallback.recover(ctx, metrics, fails, refs_cache)
    metrics["gates"] = {"passed": not fails, "failures": fails}
    ctx = dataclasses.replace(ctx, metrics={**ctx.metrics, **metrics})
    if fails:
        from . import bundle as bundle_stage

        report = bundle_stage.write_failed_report(ctx)
        raise GateFailed(f"validation gate failed: {'; '.join(fails)} (report: {report}); {ctx.out_dir} was not changed")
    return ctx
