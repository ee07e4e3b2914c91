"""Quantisation modes on the built-in MiniLM teacher: dynamic int8 (per-channel) vs plain static int8 vs
static int8 with the accuracy-aware fallback, against the fp32 model, on STS-B dev sentences.

    .venv/bin/python bench/quant_modes.py [--sentences 200] [--formats onnx] [--stsb ../shared/data/stsb/dev.tsv]

Writes bench/results/quant_modes.json and .md. Each mode is a real `edgepack.build` with a profile of
its own (teacher as student, the android-arm64 gates), written to a temp dir, so the numbers do not
depend on what the shipped profiles choose. A mode that fails the gates is built again ungated, so it
can still be measured.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runs from a clone without installing, like bench/baselines.py

from edgepack.measure.stats import cosine_rows  # noqa: E402
GATES = {"min_cosine_vs_teacher": 0.99, "min_cosine_vs_student": 0.99}  # android-arm64's


def profile(mode: str, formats, fallback: int = 0, gated: bool = True, buckets=(32, 64, 128)) -> str:
    """A profile of our own: teacher as student, android-arm64's buckets and (if gated) parity gates."""
    lines = [f'name = "bench-{mode}"', f"formats = {json.dumps(list(formats))}", "threads = 1",
             "[shapes]", f"sequence_buckets = {json.dumps(list(buckets))}",
             "[quantize]", f'mode = "{mode}"', "per_channel = true", f"fallback_max_layers = {fallback}",
             "[student]", 'strategy = "teacher"', "[budget]", "max_size_mb = 200"]
    if gated:
        lines += [f"{k} = {v}" for k, v in GATES.items()]
    return "\n".join(lines) + "\n"


def stsb_sentences(path: Path, n: int) -> list[str]:
    seen, out = set(), []
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        cols = line.split("\t")  # quoting off: STS-B has bare quotes inside sentences
        for s in cols[1:3]:
            if s and s not in seen:
                seen.add(s)
                out.append(s)
        if len(out) >= n:
            break
    return out[:n]


def measure(bundle_dir: Path, fmt: str, sentences, ref) -> dict:
    import edgepack

    b = edgepack.load_bundle(bundle_dir, format=fmt, threads=1)
    got = b.outputs(sentences)
    cos = cosine_rows(got, ref)
    lat = []
    for s in sentences:
        t0 = time.perf_counter()
        b.outputs([s])
        lat.append((time.perf_counter() - t0) * 1000)
    ids = b.encode(["word " * 200])[0][:128]
    pad = []
    for _ in range(20):
        t0 = time.perf_counter()
        b.run_ids([ids])
        pad.append((time.perf_counter() - t0) * 1000)
    arts = [a for a in b.manifest["artifacts"] if a["format"] == fmt]
    return {
        "cosine_min": float(cos.min()), "cosine_mean": float(cos.mean()),
        "size_bytes": sum(a["bytes"] for a in arts), "largest_file_bytes": max(a["bytes"] for a in arts),
        "latency_sentence_p50_ms": float(np.percentile(lat, 50)), "latency_sentence_p95_ms": float(np.percentile(lat, 95)),
        "latency_128_p50_ms": float(np.percentile(pad, 50)),
    }


def build(tmp: Path, name: str, toml: str, cache: Path):
    """Returns (bundle dir or None, report.json of the build, gate error message or None)."""
    import edgepack
    from edgepack.errors import GateFailed

    target = tmp / f"{name}.toml"
    target.write_text(toml)
    out = tmp / f"out-{name}"
    t0 = time.perf_counter()
    try:
        edgepack.build(target=str(target), out=out, cache_dir=cache, seed=0)
    except GateFailed as exc:
        m = re.search(r"\(report: (.+?report\.md)\)", exc.message)
        report = json.loads(Path(m.group(1)).with_suffix(".json").read_text()) if m else {}
        return None, report, exc.message, time.perf_counter() - t0
    return out, json.loads((out / "report.json").read_text()), None, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sentences", type=int, default=200)
    ap.add_argument("--formats", default="onnx,tflite")
    ap.add_argument("--stsb", default=str(ROOT.parent / "shared" / "data" / "stsb" / "dev.tsv"))
    ap.add_argument("--cache", default=None, help="edgepack work cache (default: a temp dir)")
    ap.add_argument("--fallback-max-layers", type=int, default=24)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from edgepack.modeling import load_hf_model, run_torch, wrap
    from edgepack.teacher import builtin_model_path
    from tokenizers import Tokenizer

    formats = args.formats.split(",")
    sentences = stsb_sentences(Path(args.stsb), args.sentences)
    results = {"sentences": len(sentences), "source": "STS-B dev (sentence1/sentence2, first unique)",
               "gates": GATES, "torch_threads": 1, "modes": {}}
    with tempfile.TemporaryDirectory(prefix="edgepack-quant-modes-") as tmp_s:
        tmp = Path(tmp_s)
        cache = Path(args.cache) if args.cache else tmp / "cache"
        runs = {
            "dynamic int8 (per-channel)": ("dynamic-int8", 0),
            "static int8 (plain)": ("static-int8", 0),
            "static int8 + fallback": ("static-int8", args.fallback_max_layers),
        }
        ref = None
        for label, (mode, fb) in runs.items():
            name = re.sub(r"\W+", "-", label).strip("-")
            out, report, gate_error, seconds = build(tmp, name, profile(mode, formats, fb, True), cache)
            entry = {"mode": mode, "fallback_max_layers": fb, "build_s": round(seconds, 1),
                     "gates_passed": gate_error is None, "gate_error": gate_error,
                     "kept_float": report.get("quantize", {}).get("kept_float", {}),
                     "build_validation": {f: {"vs_student_fp32": m["vs_student_fp32"]} for f, m in report.get("metrics", {}).get("formats", {}).items()},
                     "formats": {}}
            fb_info = report.get("metrics", {}).get("fallback")
            if fb_info:
                entry["fallback"] = fb_info
            if out is None and not fb:
                # Failed its gates: build it again ungated, only to measure what it would have shipped.
                out, _, _, _ = build(tmp, name + "-ungated", profile(mode, formats, 0, False), cache)
                entry["measured_from_ungated_build"] = True
            if out is not None:
                if ref is None:
                    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
                    max_length = json.loads((out / "edgepack.json").read_text())["tokenizer"]["max_length"]
                    head = wrap(load_hf_model(builtin_model_path(), "sentence-embedding"), "sentence-embedding", "bert", "mean", True)
                    ref = run_torch(head, tok, sentences, max_length)
                for fmt in formats:
                    entry["formats"][fmt] = measure(out, fmt, sentences, ref)
            results["modes"][label] = entry
            print(label, json.dumps({k: entry[k] for k in ("gates_passed", "kept_float", "formats")}), flush=True)
    write(results)


def write(results: dict) -> None:
    dst = ROOT / "bench" / "results"
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "quant_modes.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [f"# Quantisation modes on all-MiniLM-L6-v2 ({results['sentences']} STS-B dev sentences, 1 thread)", "",
             "| mode | format | android-arm64 gates (build) | kept in float | cosine vs fp32 min / mean | size MB | p50 ms/sentence | p50 ms @128 |",
             "|---|---|---|---|---|---|---|---|"]
    for label, e in results["modes"].items():
        gates = "passed" if e["gates_passed"] else "FAILED"
        for fmt, m in e["formats"].items():
            kept = ", ".join(e["kept_float"].get(fmt, [])) or "-"
            lines.append(f"| {label} | {fmt} | {gates} | {kept} | {m['cosine_min']:.4f} / {m['cosine_mean']:.4f} | "
                         f"{m['size_bytes'] / 1e6:.1f} | {m['latency_sentence_p50_ms']:.2f} | {m['latency_128_p50_ms']:.2f} |")
        if not e["formats"]:
            lines.append(f"| {label} | - | {gates} | {', '.join(sum(e['kept_float'].values(), [])) or '-'} | - | - | - | - |")
    lines += ["", "Gates: android-arm64's (cosine ≥ 0.99 vs teacher and vs fp32 student on every one of the build's "
              "64 held-out built-in-corpus sentences). A mode that failed them was rebuilt ungated to be measured."]
    for label, e in results["modes"].items():
        if e.get("gate_error"):
            lines += ["", f"{label}: `{e['gate_error'][:500]}`"]
        for fmt, f in (e.get("fallback") or {}).get("formats", {}).items():
            b, a = f["before"]["vs_student_fp32"], f.get("after", f["before"])["vs_student_fp32"]
            lines += ["", f"{label} ({fmt}), build validation vs fp32: cosine min {b['cosine_min']:.4f} → {a['cosine_min']:.4f}, "
                      f"mean {b['cosine_mean']:.4f} → {a['cosine_mean']:.4f}; kept in float: {', '.join(f['kept_float']) or '-'}; "
                      f"most sensitive: " + ", ".join(x["layer"] for x in f["sensitivity"][:6])]
    (dst / "quant_modes.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
