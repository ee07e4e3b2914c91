"""edgepack.json: what a bundle is, built from the build context.

`manifest_for` describes the staged bundle; `open_staged` loads it through the runtime with that
description in memory (evaluation and golden cases run before anything is final); `write_manifest`,
called once by the bundle stage, adds the file table and writes it.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from importlib import metadata
from pathlib import Path

from .context import BuildContext
from .measure.tokenization import unk_token
from .runtime.edgepack_runtime import FORMAT_VERSION, MANIFEST, load_bundle, sha256_file

TOOLS = ("edgepack", "torch", "transformers", "tokenizers", "onnx", "onnxruntime", "litert-torch", "ai-edge-quantizer", "ai-edge-litert", "executorch", "torchao", "numpy")


def tool_versions() -> dict:
    out = {"python": platform.python_version()}
    for name in TOOLS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _special_ids(spec: dict, ids: dict) -> tuple:
    """(cls_id, sep_id) the post-processor adds around a single text: BERT's [CLS]/[SEP], RoBERTa's <s>/</s>."""
    post = spec.get("post_processor") or {}
    for proc in [post] + list(post.get("processors") or []):
        if isinstance(proc.get("cls"), list) and isinstance(proc.get("sep"), list):  # Bert/RobertaProcessing
            return proc["cls"][1], proc["sep"][1]
        single = proc.get("single")
        if isinstance(single, list):  # TemplateProcessing: the specials before and after $A
            names = [x.get("SpecialToken", {}).get("id") for x in single]
            seq = [i for i, x in enumerate(single) if "Sequence" in x]
            if seq and names[: seq[0]] and names[seq[0] + 1 :]:
                return ids.get(names[seq[0] - 1]), ids.get(names[-1])
    return ids.get("[CLS]"), ids.get("[SEP]")


def tokenizer_facts(tokenizer_json: Path) -> dict:
    """What a non-Python tokenizer (the Android app's Java WordPiece, byte-level BPE or Unigram) needs
    to reproduce ours. Types and steps it does not implement are named, so it can refuse them."""
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    norm = spec.get("normalizer") or {}
    model = spec.get("model") or {}
    vocab = model.get("vocab") or {}
    # Unigram keeps [piece, score] pairs in id order; WordPiece and BPE a {token: id} map.
    ids = {tok[0]: i for i, tok in enumerate(vocab)} if isinstance(vocab, list) else dict(vocab)
    ids.update({a["content"]: a["id"] for a in spec.get("added_tokens") or []})
    unk = unk_token(spec)
    cls_id, sep_id = _special_ids(spec, ids)
    pad = (spec.get("padding") or {}).get("pad_token") or next((t for t in ("[PAD]", "<pad>") if t in ids), None)
    return {
        "type": model.get("type", ""),
        "lowercase": bool(norm.get("lowercase", False)),
        "strip_accents": norm.get("strip_accents"),  # null = follow lowercase (BERT rule)
        "handle_chinese_chars": bool(norm.get("handle_chinese_chars", True)),
        "clean_text": bool(norm.get("clean_text", True)),
        "unk_token": unk,
        "continuing_subword_prefix": model.get("continuing_subword_prefix", "##"),
        "max_input_chars_per_word": model.get("max_input_chars_per_word", 100),
        "cls_id": cls_id,
        "sep_id": sep_id,
        "pad_id": ids.get(pad, 0),
        "unk_id": ids.get(unk) if unk is not None else None,
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
        # BPE and Unigram (issue #13): the ports read their merges and pieces from tokenizer.json
        # itself; these are the settings they must honour, with the step that sets each.
        **_subword_facts(spec),
    }


def _subword_facts(spec: dict) -> dict:
    model = spec.get("model") or {}
    kind = model.get("type")
    if kind not in ("BPE", "Unigram"):
        return {}
    pre = spec.get("pre_tokenizer") or {}
    facts = {
        "normalizers": [n.get("type") for n in _steps(spec.get("normalizer"))],
        "pre_tokenizers": [{k: v for k, v in p.items() if k in ("type", "add_prefix_space", "use_regex", "trim_offsets",
                                                                 "replacement", "prepend_scheme", "split")}
                           for p in _steps(pre)],
        "byte_fallback": bool(model.get("byte_fallback", False)),
    }
    if kind == "BPE":
        facts.update({"dropout": model.get("dropout"), "fuse_unk": bool(model.get("fuse_unk", False)),
                      "end_of_word_suffix": model.get("end_of_word_suffix"),
                      "bpe_continuing_subword_prefix": model.get("continuing_subword_prefix"),
                      "ignore_merges": bool(model.get("ignore_merges", False))})
    return facts


def _steps(component) -> list:
    """A normalizer or pre-tokenizer as its list of steps (a Sequence's, or itself)."""
    if not component:
        return []
    key = "normalizers" if "normalizers" in component else "pretokenizers"
    return list(component.get(key) or []) if component.get("type") == "Sequence" else [component]


def file_table(root: Path, skip=(MANIFEST,)) -> dict:
    return {
        p.relative_to(root).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in skip
    }


def manifest_for(ctx: BuildContext) -> dict:
    t = ctx.teacher
    facts = tokenizer_facts(ctx.staging_dir / "tokenizer.json")
    max_length = ctx.max_length
    return {
        "format_version": FORMAT_VERSION,
        "target": ctx.target.name,
        "task": t.task,
        "default_format": ctx.target.default_format,
        "output": "logits" if t.task == "text-classification" else "embedding",
        "output_dim": ctx.student.output_dim,
        "pooling": None if t.task == "text-classification" else {"mode": t.pooling, "normalize": t.normalize, "in_graph": True},
        "labels": list(t.labels),
        # vocab.txt is written for WordPiece and BPE ({token: id} vocabularies), not for Unigram's scored pieces.
        "tokenizer": {"file": "tokenizer.json", "vocab": "vocab.txt" if (ctx.staging_dir / "vocab.txt").is_file() else None,
                      "max_length": max_length, **facts},
        "artifacts": [
            {
                "path": a.path,
                "format": a.format,
                "precision": a.precision,
                "quantization": ctx.target.quantize.mode,
                # runtime versions/ops this file needs (e.g. int4 embeddings); the runtime checks them
                "requires": [dict(r) for r in a.requires],
                # static buckets this file serves (TFLite: one signature each); null = dynamic length
                "buckets": list(a.buckets) or None,
                "signatures": [dict(s) for s in a.signatures],
                "inputs": list(a.inputs),
                "outputs": list(a.outputs),
                "bytes": (ctx.staging_dir / a.path).stat().st_size,
                "sha256": sha256_file(ctx.staging_dir / a.path),
            }
            for a in ctx.artifacts
        ],
        "teacher": t.description,
        "student": ctx.student.info,
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


def manifest_metrics(metrics: dict) -> dict:
    """The compact subset of the measured figures kept in edgepack.json (the full set is in report.json)."""
    out = {"validation_texts": metrics.get("validation_texts"), "formats": {}}
    for fmt, m in metrics.get("formats", {}).items():
        out["formats"][fmt] = {
            "vs_teacher": m["vs_teacher"],
            "vs_student_fp32": m["vs_student_fp32"],
            "latency_p50_ms": {k: v["p50_ms"] for k, v in m["latency"]["buckets"].items()},
            "size_bytes": m["size_bytes"],
        }
    return out


def open_staged(ctx: BuildContext, fmt: str, threads: int = 1):
    """The staged bundle through the shipped runtime, described by `manifest_for` in memory. The files
    are the build's own, written moments ago, so their hashes are not checked."""
    return load_bundle(ctx.staging_dir, format=fmt, threads=threads, verify=False, manifest=manifest_for(ctx))


def write_manifest(root: Path, manifest: dict) -> None:
    manifest["files"] = file_table(root)
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
