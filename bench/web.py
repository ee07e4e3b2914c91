"""Weight precision for the web target (issue #14), measured in the real browser: each option is a real
`edgepack.build` of targets/web.toml with only its [quantize] changed (budget lifted, so every option is
measured), then the bundle's own demo page runs in headless Chromium (web/browser.mjs: Debian's
chromium, transformers.js + onnxruntime-web WebAssembly from web/package-lock.json, one thread).

    python bench/web.py                 # 100 STS-B dev sentences, 3 timed passes each
    python bench/web.py --cache DIR     # reuse a work cache that holds the web student (skips distillation)

Per option: onnx/model_<dtype>.onnx's size; cosine of each sentence's browser embedding (the page's
pipeline, one text per call) to the teacher's fp32 torch embedding (min, mean); the golden cases in the
browser (min cosine to the build's outputs, which edgepack check reproduces); the browser latency per
sentence (p50/p95 over the timed passes, after a warm-up); and onnxruntime (Python, x86) latency from
the build's report for comparison. Writes bench/results/web.{json,md}. Needs `npm ci --prefix web` and
/usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))
from precision import build, profile_text, stsb_sentences, teacher_reference  # noqa: E402

RESULTS = REPO / "bench" / "results"
# [quantize] per option, on top of targets/web.toml's own section (the transformers.js dtype follows).
# No int4 word-embedding table (android-arm64's embedding_bits = 4): onnxruntime-web has no
# GatherBlockQuantized kernel, the session fails to load (targets.py refuses it for this layout).
OPTIONS = {
    "fp32": {"mode": "none", "embedding_bits": 8, "weight_bits": 8},
    "fp16": {"mode": "fp16", "embedding_bits": 8, "weight_bits": 8},
    "int8 per-channel (MatMulInteger)": {"mode": "dynamic-int8", "embedding_bits": 8, "weight_bits": 8},
    "int8 blocks of 32 (MatMulNBits 8-bit)": {"mode": "dynamic-int8", "embedding_bits": 8, "weight_bits": 8, "block_size": 32},
    "int4 MatMulNBits + int8 embeddings": {"mode": "dynamic-int8", "embedding_bits": 8, "weight_bits": 4},
}


def in_browser(bundle: Path, texts: list[str], repeats: int, tmp: Path) -> dict:
    texts_file = tmp / "texts.json"
    texts_file.write_text(json.dumps(texts), encoding="utf-8")
    run = subprocess.run(["node", str(REPO / "web" / "browser.mjs"), str(bundle), "--golden", "--latency",
                          "--texts", str(texts_file), "--repeats", str(repeats)], capture_output=True, text=True, timeout=1800)
    try:
        return json.loads(run.stdout)
    except ValueError:
        return {"error": (run.stderr or run.stdout).strip()[-500:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cache", default=None, help="edgepack work cache (default: a temp dir)")
    ap.add_argument("--only", action="append", help="measure only these options (by label)")
    args = ap.parse_args()

    import numpy as np
    import torch

    from edgepack.golden import golden_matches

    torch.set_num_threads(1)
    sentences = stsb_sentences(args.sentences)
    results = {"sentences": len(sentences), "source": "STS-B dev (sentence1/sentence2, first unique)",
               "repeats": args.repeats, "machine": f"{platform.machine()} {platform.processor()}", "cpus": os.cpu_count(),
               "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "options": {}}
    with tempfile.TemporaryDirectory(prefix="edgepack-web-bench-") as tmp_s:
        tmp = Path(tmp_s)
        cache = Path(args.cache) if args.cache else tmp / "cache"
        ref = None
        for label, change in OPTIONS.items():
            if args.only and label not in args.only:
                continue
            name = "web-" + "".join(c if c.isalnum() else "_" for c in label)
            out, seconds = build(tmp, name, profile_text("web", change), cache, False)
            if ref is None:
                ref = teacher_reference(out, sentences)
            manifest = json.loads((out / "edgepack.json").read_text(encoding="utf-8"))
            report = json.loads((out / "report.json").read_text(encoding="utf-8"))
            art = manifest["artifacts"][0]
            entry = {"quantize": change, "file": art["path"], "bytes": art["bytes"], "precision": art["precision"],
                     "build_s": round(seconds, 1),
                     "python_onnxruntime_p50_ms": {k: v["p50_ms"] for k, v in
                                                   report["metrics"]["formats"]["onnx"]["latency"]["buckets"].items()},
                     "build_vs_teacher_mean": report["metrics"]["formats"]["onnx"]["vs_teacher"].get("cosine_mean")}
            b = in_browser(out, sentences, args.repeats, tmp)
            if "error" in b:
                entry["browser_error"] = b["error"]
            else:
                emb = np.asarray(b["embeddings"], dtype=np.float64)
                cos = (emb * ref).sum(1) / np.linalg.norm(emb, axis=1) / np.linalg.norm(ref, axis=1)
                golden = [golden_matches("sentence-embedding", c["expected"]["onnx"], g["from_ids"], manifest["golden_tolerance"])
                          for c, g in zip(manifest["golden"], b["golden"])]
                entry.update({"browser": b["browser"], "load_ms": b["load_ms"], "dtype": b["dtype"],
                              "browser_cosine_vs_teacher_min": float(cos.min()), "browser_cosine_vs_teacher_mean": float(cos.mean()),
                              "browser_golden_all_match": all(ok for ok, _ in golden),
                              "browser_golden_min_cosine": min(float(d.split()[-1]) for _, d in golden),
                              "browser_latency_ms": {k: b["latency"][k] for k in ("p50_ms", "p95_ms", "mean_ms", "runs")}})
            results["options"][label] = entry
            print(label, json.dumps({k: entry.get(k) for k in ("bytes", "browser_cosine_vs_teacher_mean", "browser_latency_ms",
                                                                  "browser_golden_all_match", "browser_error")}), flush=True)
    write(results)


def write(results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "web.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    lines = [f"# Web target: weight precision in the browser ({results['started']})", "",
             f"{results['sentences']} {results['source']}; headless Chromium, onnxruntime-web WebAssembly, 1 thread, "
             f"{results['repeats']} timed passes; {results['machine']}, {results['cpus']} CPUs (shared). "
             "Command: `python bench/web.py`.", "",
             "| option | file | MB | browser cos vs teacher (mean / min) | golden in browser | browser ms/sentence p50 / p95 | onnxruntime x86 ms p50 (32 tok) |",
             "|---|---|---:|---|---|---|---:|"]
    for label, e in results["options"].items():
        if "browser_error" in e:
            browser = f"fails to load: {e['browser_error'][:120]}"
            lines.append(f"| {label} | {e['file']} | {e['bytes'] / 1e6:.2f} | {browser} | | | {e['python_onnxruntime_p50_ms'].get('32')} |")
            continue
        lat = e["browser_latency_ms"]
        lines.append(f"| {label} | {e['file']} | {e['bytes'] / 1e6:.2f} | {e['browser_cosine_vs_teacher_mean']:.4f} / "
                     f"{e['browser_cosine_vs_teacher_min']:.4f} | {'all match' if e['browser_golden_all_match'] else 'MISMATCH'} "
                     f"(min {e['browser_golden_min_cosine']:.5f}) | {lat['p50_ms']:.1f} / {lat['p95_ms']:.1f} | "
                     f"{e['python_onnxruntime_p50_ms'].get('32')} |")
    (RESULTS / "web.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
