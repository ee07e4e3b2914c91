"""Assemble the bundle in the staging dir, then finish it (golden cases, reports, hashes) and publish.

Publishing is a rename of a complete directory onto --out: a failed or interrupted build never leaves
a half-written bundle, and a previous bundle at --out survives until the new one is complete.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import shutil
import tempfile
from importlib import metadata, resources
from pathlib import Path

import numpy as np

from ..context import BuildContext
from ..errors import UsageError
from ..runtime.edgepack_runtime import FORMAT_VERSION, MANIFEST, load_bundle, sha256_file
from . import report

GOLDEN_EXTRA = (
    "",
    "Café naïve résumé — ÅÉÎ",
    "多语言文本 and emoji 🙂👍",
    "A long input " + "that keeps going and going " * 60,
)
TOOLS = ("edgepack", "torch", "transformers", "tokenizers", "onnx", "onnxruntime", "litert-torch", "ai-edge-quantizer", "ai-edge-litert", "numpy")


def tool_versions() -> dict:
    out = {"python": platform.python_version()}
    for name in TOOLS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def tokenizer_facts(tokenizer_json: Path) -> dict:
    """What a non-Python tokenizer (the Android app's Java WordPiece) needs to reproduce ours."""
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    norm = spec.get("normalizer") or {}
    model = spec.get("model") or {}
    vocab = model.get("vocab") or {}
    return {
        "type": model.get("type", ""),
        "lowercase": bool(norm.get("lowercase", False)),
        "strip_accents": norm.get("strip_accents"),  # null = follow lowercase (BERT rule)
        "handle_chinese_chars": bool(norm.get("handle_chinese_chars", True)),
        "clean_text": bool(norm.get("clean_text", True)),
        "unk_token": model.get("unk_token", "[UNK]"),
        "continuing_subword_prefix": model.get("continuing_subword_prefix", "##"),
        "max_input_chars_per_word": model.get("max_input_chars_per_word", 100),
        "cls_id": vocab.get("[CLS]"),
        "sep_id": vocab.get("[SEP]"),
        "pad_id": vocab.get("[PAD]", 0),
        "unk_id": vocab.get(model.get("unk_token", "[UNK]")),
        "vocab_size": len(vocab),
        # The Java tokenizer refuses pipelines it does not implement instead of silently diverging.
        "normalizer": norm.get("type"),
        "pre_tokenizer": (spec.get("pre_tokenizer") or {}).get("type"),
        "post_processor": (spec.get("post_processor") or {}).get("type"),
        # Added tokens are matched in the raw text before normalisation ("[MASK]" typed by a user is id 103).
        "added_tokens": [
            {k: tok.get(k) for k in ("id", "content", "special", "normalized", "lstrip", "rstrip", "single_word")}
            for tok in spec.get("added_tokens") or []
        ],
    }


def write_tokenizer(src_dir: Path, dst: Path) -> None:
    src = src_dir / "tokenizer.json"
    if src.is_file():
        shutil.copyfile(src, dst / "tokenizer.json")
    else:
        from ..modeling import hf_tokenizer

        hf_tokenizer(src_dir).save(str(dst / "tokenizer.json"))
    # vocab.txt is always written from tokenizer.json so the two can never disagree.
    vocab = json.loads((dst / "tokenizer.json").read_text(encoding="utf-8"))["model"].get("vocab")
    if isinstance(vocab, dict):
        by_id = sorted(vocab.items(), key=lambda kv: kv[1])
        (dst / "vocab.txt").write_text("".join(tok + "\n" for tok, _ in by_id), encoding="utf-8")


def file_table(root: Path, skip=(MANIFEST,)) -> dict:
    return {
        p.relative_to(root).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in skip
    }


def manifest_for(ctx: BuildContext) -> dict:
    t = ctx.teacher
    facts = tokenizer_facts(ctx.staging_dir / "tokenizer.json")
    max_length = min(t.max_length, max(ctx.target.sequence_buckets))
    return {
        "format_version": FORMAT_VERSION,
        "target": ctx.target.name,
        "task": t.task,
        "default_format": ctx.target.default_format,
        "output": "logits" if t.task == "text-classification" else "embedding",
        "output_dim": ctx.metrics.get("output_dim"),
        "pooling": None if t.task == "text-classification" else {"mode": t.pooling, "normalize": t.normalize, "in_graph": True},
        "labels": list(t.labels),
        "tokenizer": {"file": "tokenizer.json", "vocab": "vocab.txt", "max_length": max_length, **facts},
        "artifacts": [
            {
                "path": a.path,
                "format": a.format,
                "precision": a.precision,
                "quantization": ctx.target.quantize.mode,
                "sequence_length": a.sequence_length,
                "inputs": list(a.inputs),
                "outputs": list(a.outputs),
                "bytes": (ctx.staging_dir / a.path).stat().st_size,
                "sha256": sha256_file(ctx.staging_dir / a.path),
            }
            for a in ctx.artifacts
        ],
        "teacher": t.description,
        "student": ctx.student_info,
        "provenance": {
            "tools": tool_versions(),
            "profile": ctx.target.source,
            "data": ctx.texts.source if ctx.texts else None,
            "data_sha256": ctx.texts.sha256 if ctx.texts else None,
            "seed": ctx.options.seed,
            # lets `edgepack check --data` find the teacher without --teacher
            "teacher_builtin": ctx.options.model is None,
        },
        # the profile's gates, so `edgepack check --teacher/--data` in CI gates exactly as the build did
        "budget": dataclasses.asdict(ctx.target.budget),
    }


def write_manifest(root: Path, manifest: dict) -> None:
    manifest["files"] = file_table(root)
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def assemble(ctx: BuildContext) -> BuildContext:
    """Tokenizer, labels and a first manifest, so the runtime can load the staged bundle for validation."""
    write_tokenizer(ctx.tokenizer_dir, ctx.staging_dir)
    if ctx.teacher.labels:
        (ctx.staging_dir / "labels.txt").write_text("".join(f"{x}\n" for x in ctx.teacher.labels), encoding="utf-8")
    write_manifest(ctx.staging_dir, manifest_for(ctx))
    return ctx


def golden_cases(ctx: BuildContext) -> list[dict]:
    texts = list(ctx.texts.validation[:6]) + list(GOLDEN_EXTRA)
    cases = []
    bundles = {fmt: load_bundle(ctx.staging_dir, format=fmt, threads=1) for fmt in ctx.target.formats}
    first = bundles[ctx.target.formats[0]]
    ids = first.encode(texts)
    for text, tok_ids in zip(texts, ids):
        expected = {fmt: b.run_ids([tok_ids])[0].round(6).tolist() for fmt, b in bundles.items()}
        cases.append({"text": text, "ids": tok_ids, "expected": expected})
    return cases


# How far a re-run may drift from the golden outputs: int8 kernels differ slightly across CPUs.
GOLDEN_TOLERANCE = {"sentence-embedding": {"min_cosine": 0.999}, "text-classification": {"max_abs_diff": 0.05, "same_argmax": True}}


def finish(ctx: BuildContext) -> BuildContext:
    manifest = json.loads((ctx.staging_dir / MANIFEST).read_text(encoding="utf-8"))
    manifest["golden"] = golden_cases(ctx)
    manifest["golden_tolerance"] = GOLDEN_TOLERANCE[ctx.teacher.task]
    manifest["metrics"] = report.manifest_metrics(ctx.metrics)
    runtime_src = resources.files("edgepack.runtime").joinpath("edgepack_runtime.py")
    (ctx.staging_dir / "edgepack_runtime.py").write_text(runtime_src.read_text(encoding="utf-8"), encoding="utf-8")
    report.write_reports(ctx, ctx.staging_dir)
    write_manifest(ctx.staging_dir, manifest)
    return ctx


def write_failed_report(ctx: BuildContext) -> Path:
    """A failed gate leaves --out alone; its report goes to the work dir for the user to read."""
    dst = Path(tempfile.mkdtemp(prefix=f"failed-{ctx.target.name}-", dir=ctx.work_dir))
    report.write_reports(ctx, dst)
    return dst / "report.md"


def check_out_dir(out: Path, force: bool) -> None:
    """Refuse to replace something that is not a bundle unless --force."""
    if not out.exists():
        parent = out.parent if str(out.parent) else Path(".")
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"--out {out}: parent is not a directory")
        return
    if not out.is_dir():
        raise UsageError(f"--out {out}: exists and is a file")
    if (out / MANIFEST).is_file() or not any(out.iterdir()) or force:
        return
    raise UsageError(f"--out {out}: exists and is not an edgepack bundle; pass --force to replace it")


def publish(staging: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{staging.name}"
        out.rename(old)
    try:
        staging.rename(out)
    except OSError:
        if old is not None:
            old.rename(out)  # put the previous bundle back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def run(ctx: BuildContext) -> BuildContext:
    return dataclasses.replace(finish(ctx))


def golden_matches(task: str, expected, got, tolerance: dict) -> tuple[bool, str]:
    e, g = np.asarray(expected, dtype=np.float64), np.asarray(got, dtype=np.float64)
    if e.shape != g.shape:
        return False, f"shape {list(g.shape)} != expected {list(e.shape)}"
    if task == "text-classification":
        diff = float(np.abs(e - g).max()) if e.size else 0.0
        if tolerance.get("same_argmax", True) and e.size and int(e.argmax()) != int(g.argmax()):
            return False, f"argmax {int(g.argmax())} != expected {int(e.argmax())}"
        return diff <= tolerance.get("max_abs_diff", 0.05), f"max |diff| {diff:.4g}"
    cos = float(e @ g / max(np.linalg.norm(e) * np.linalg.norm(g), 1e-12))
    return cos >= tolerance.get("min_cosine", 0.999), f"cosine {cos:.6f}"
