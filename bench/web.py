"""Weight precision for the web target (issue #14), measured in the real browser: each option is a real
`edgepack.build` of targets/web.toml with only its [quantize] changed (budget lifted, so every option is
measured), then the bundle's own demo page runs in headless Chromium (web/browser.mjs: Debian's
chromium, transformers.js + onnxruntime-web WebAssembly from web/package-lock.json, one thread).

    python bench/web.py                 # 100 STS-B dev sentences, 3 timed passes each
    python bench/web.py --cache DIR     # reuse a work cache that holds the web student (skips distillation)

Per option: onnx/model_<dtype>.onnx's size; cosine of each sentence's browser embedding (the page's
pipeline, one text per call) to the teacher's fp32 torch embedding (min, mean); the golden cases in the
browser (min cosine to the build's outputs, which edgepack check reproduces); the browser latency per
sentence and at fixed token lengths (the options interleaved over rounds: the CPUs are shared); and
onnxruntime (Python, x86) latency from the build's report for comparison. Writes bench/results/web.{json,md}. Needs `npm ci --prefix web` and
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


# Token lengths (with [CLS]/[SEP]) timed beside the sentences: edgepack's buckets and a short query.
LENGTHS = (8, 32, 64, 128)


def in_browser(bundle: Path, texts: list[str], tmp: Path, *extra: str) -> dict:
    texts_file = tmp / "texts.json"
    texts_file.write_text(json.dumps(texts), encoding="utf-8")
    run = subprocess.run(["node", str(REPO / "web" / "browser.mjs"), str(bundle), "--texts", str(texts_file), *extra],
                         capture_output=True, text=True, timeout=1800)
    try:
        return json.loads(run.stdout)
    except ValueError:
        return {"error": (run.stderr or run.stdout).strip()[-500:]}


def texts_of_length(bundle: Path, source: list[str], lengths) -> list[str]:
    """One text per length: words of `source` until the bundle's tokenizer gives exactly that many ids."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    tok.no_padding()  # the bundle's tokenizer.json pads and truncates to max_length
    tok.no_truncation()
    words = " ".join(source).split()
    out = []
    for n in lengths:
        k = 1
        while len(tok.encode(" ".join(words[:k])).ids) < n:
            k += 1
        out.append(" ".join(words[:k]))
    return out


def median(xs):
    import statistics

    return statistics.median(xs) if xs else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3, help="timed passes over the texts per round")
    ap.add_argument("--rounds", type=int, default=3, help="latency rounds, the options interleaved (shared CPUs drift)")
    ap.add_argument("--cache", default=None, help="edgepack work cache (default: a temp dir)")
    ap.add_argument("--only", action="append", help="measure only these options (by label)")
    args = ap.parse_args()

    import numpy as np
    import torch

    from edgepack.golden import golden_matches

    torch.set_num_threads(1)
    sentences = stsb_sentences(args.sentences)
    results = {"sentences": len(sentences), "source": "STS-B dev (sentence1/sentence2, first unique)",
               "repeats": args.repeats, "rounds": args.rounds, "lengths": list(LENGTHS),
               "machine": f"{platform.machine()} {platform.processor()}".strip(), "cpus": os.cpu_count(),
               "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "options": {}}
    with tempfile.TemporaryDirectory(prefix="edgepack-web-bench-") as tmp_s:
        tmp = Path(tmp_s)
        cache = Path(args.cache) if args.cache else tmp / "cache"
        ref, bundles, timed = None, {}, None
        for label, change in OPTIONS.items():
            if args.only and label not in args.only:
                continue
            name = "web-" + "".join(c if c.isalnum() else "_" for c in label)
            out, seconds = build(tmp, name, profile_text("web", change), cache, False)
            if ref is None:
                ref = teacher_reference(out, sentences)
                timed = sentences + texts_of_length(out, sentences, LENGTHS)
            manifest = json.loads((out / "edgepack.json").read_text(encoding="utf-8"))
            report = json.loads((out / "report.json").read_text(encoding="utf-8"))
            art = manifest["artifacts"][0]
            entry = {"quantize": change, "file": art["path"], "bytes": art["bytes"], "precision": art["precision"],
                     "build_s": round(seconds, 1),
                     "python_onnxruntime_p50_ms": {k: v["p50_ms"] for k, v in
                                                   report["metrics"]["formats"]["onnx"]["latency"]["buckets"].items()},
                     "build_vs_teacher_mean": report["metrics"]["formats"]["onnx"]["vs_teacher"].get("cosine_mean")}
            b = in_browser(out, sentences, tmp, "--golden")
            if "error" in b:
                entry["browser_error"] = b["error"]
            else:
                bundles[label] = out
                emb = np.asarray(b["embeddings"], dtype=np.float64)
                cos = (emb * ref).sum(1) / np.linalg.norm(emb, axis=1) / np.linalg.norm(ref, axis=1)
                golden = [golden_matches("sentence-embedding", c["expected"]["onnx"], g["from_ids"], manifest["golden_tolerance"])
                          for c, g in zip(manifest["golden"], b["golden"])]
                entry.update({"browser": b["browser"], "load_ms": b["load_ms"], "dtype": b["dtype"],
                              "browser_cosine_vs_teacher_min": float(cos.min()), "browser_cosine_vs_teacher_mean": float(cos.mean()),
                              "browser_golden_all_match": all(ok for ok, _ in golden),
                              "browser_golden_min_cosine": min(float(d.split()[-1]) for _, d in golden),
                              "rounds": []})
            results["options"][label] = entry
        # Latency: the options interleaved, round after round; the figure is the median over rounds.
        for _ in range(args.rounds):
            for label, out in bundles.items():
                b = in_browser(out, timed, tmp, "--latency", "--repeats", str(args.repeats))
                per_text = b["latency"]["per_text_ms"]
                sentence_times = sorted(t for times in per_text[: len(sentences)] for t in times)
                results["options"][label]["rounds"].append({
                    "sentence_p50_ms": sentence_times[len(sentence_times) // 2],
                    "sentence_mean_ms": sum(sentence_times) / len(sentence_times),
                    "tokens_p50_ms": {str(n): median(times) for n, times in zip(LENGTHS, per_text[len(sentences):])}})
        for label, entry in results["options"].items():
            rounds = entry.get("rounds")
            if rounds:
                entry["browser_latency_ms"] = {
                    "sentence_p50": median([r["sentence_p50_ms"] for r in rounds]),
                    "sentence_mean": median([r["sentence_mean_ms"] for r in rounds]),
                    **{f"tokens_{n}": median([r["tokens_p50_ms"][str(n)] for r in rounds]) for n in LENGTHS}}
            print(label, json.dumps({k: entry.get(k) for k in ("bytes", "browser_cosine_vs_teacher_mean", "browser_latency_ms",
                                                                  "browser_golden_all_match", "browser_error")}), flush=True)
    write(results)


def write(results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "web.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    lengths = results["lengths"]
    lines = [f"# Web target: weight precision in the browser ({results['started']})", "",
             f"{results['sentences']} {results['source']}. Headless Chromium, transformers.js + onnxruntime-web "
             f"WebAssembly (one thread), the bundle's demo page served from localhost. Latency: one text per call, "
             f"{results['repeats']} timed passes after a warm-up pass, {results['rounds']} rounds with the options "
             f"interleaved; the median over rounds ({results['machine']}, {results['cpus']} shared CPUs, so compare "
             "rows, not machines). Command: `python bench/web.py`.", "",
             "| option | file | MB | cosine vs teacher in the browser (mean / min) | golden cases in the browser | "
             "ms per sentence (p50 / mean) | " + " | ".join(f"ms at {n} tokens" for n in lengths) + " | onnxruntime (Python) ms at 32 / 128 |",
             "|---|---|---:|---|---|---|" + "---:|" * len(lengths) + "---|"]
    for label, e in results["options"].items():
        py = e["python_onnxruntime_p50_ms"]
        py_cell = f"{py.get('32', 0):.1f} / {py.get('128', 0):.1f}"
        if "browser_error" in e:
            lines.append(f"| {label} | {e['file']} | {e['bytes'] / 1e6:.2f} | fails to load: {e['browser_error'][:120]} | | |"
                         + " |" * len(lengths) + f" {py_cell} |")
            continue
        lat = e["browser_latency_ms"]
        lines.append(f"| {label} | {e['file']} | {e['bytes'] / 1e6:.2f} | {e['browser_cosine_vs_teacher_mean']:.4f} / "
                     f"{e['browser_cosine_vs_teacher_min']:.4f} | {'all match' if e['browser_golden_all_match'] else 'MISMATCH'} "
                     f"(min cosine {e['browser_golden_min_cosine']:.5f}) | {lat['sentence_p50']:.1f} / {lat['sentence_mean']:.1f} | "
                     + " | ".join(f"{lat[f'tokens_{n}']:.1f}" for n in lengths) + f" | {py_cell} |")
    (RESULTS / "web.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
