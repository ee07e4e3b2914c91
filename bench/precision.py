"""Weight precision (issue #12): int8; int4 word embeddings + int8 matrices; int4 everywhere — each on
the default android-arm64 student and on the teacher (android-arm64-teacher), measured side by side in
one run, plus one single-bucket conversion per model to show what the multi-signature file costs.

    python bench/precision.py             # full: the profiles' own distillation budget, 400 sentences, 30 reps
    python bench/precision.py --quick     # the student distilled with --quick, 150 sentences, 10 reps

Each option is a real `edgepack.build` of the shipped profile with only its [quantize] changed (and its
[budget] lifted, so every option is measured even where it misses a gate; whether it would have passed
the profile's own gates is recorded from the build's report). Per option and format: the model file's
size; fidelity = cosine of each STS-B dev sentence's output to the teacher's fp32 torch embedding (min
and mean); latency p50 per sequence bucket through the shipped runtime, batch 1, one thread (the build's
meter, edgepack/measure/latency.py); and the runtime versions the file needs on a device (the manifest's
`requires`). Writes bench/results/precision.{json,md}. Data: ../shared/data/stsb/dev.tsv beside the clone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import tomllib
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))  # runs from a clone without installing
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS = REPO / "bench" / "results"
STSB_DEV = REPO.parent / "shared" / "data" / "stsb" / "dev.tsv"
MODELS = {"default student": "android-arm64", "teacher": "android-arm64-teacher"}
# [quantize] changes per option, on top of the profile's own section.
OPTIONS = {
    "int8": {"embedding_bits": 8, "weight_bits": 8},
    "int4 embeddings + int8 matrices": {"embedding_bits": 4, "weight_bits": 8},
    # int4 matrices keep a fallback layer's weights in float: `kept_weights = "int8"` is for per-channel int8 ones
    "int4 everywhere": {"embedding_bits": 4, "weight_bits": 4, "block_size": 0, "kept_weights": "float"},
}
# The bound for the multi-signature file over a single-bucket conversion of the same model.
MAX_MULTI_OVER_SINGLE = 1.15


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(v)


def profile_text(target: str, quantize: dict, buckets=None, formats=None) -> str:
    """The shipped profile with its [quantize] updated and its size/parity budget lifted."""
    raw = tomllib.loads((REPO / "targets" / f"{target}.toml").read_text(encoding="utf-8"))
    raw["name"] = f"bench-{target}"
    raw["quantize"] = {k: v for k, v in {**raw.get("quantize", {}), **quantize}.items() if not (k == "block_size" and v == 0)}
    if buckets:
        raw.setdefault("shapes", {})["sequence_buckets"] = list(buckets)
    if formats:
        raw["formats"] = list(formats)
        raw["default_format"] = formats[0]
    raw["budget"] = {"max_size_mb": 1000.0}
    return "\n".join(_toml_table(raw)) + "\n"


def _toml_table(table: dict, name: str = "") -> list[str]:
    """TOML lines of a table: its values, then each sub-table under its dotted name ([student.text-classification])."""
    lines = ([f"[{name}]"] if name else []) + [f"{k} = {_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    for key, body in table.items():
        if isinstance(body, dict):
            lines += [""] + _toml_table(body, f"{name}.{key}" if name else key)
    return lines


def stsb_sentences(n: int) -> list[str]:
    if not STSB_DEV.is_file():
        sys.exit(f"error: {STSB_DEV} not found (the shared STS-B data beside the clone)")
    seen: dict[str, None] = {}
    for line in STSB_DEV.read_text(encoding="utf-8").splitlines()[1:]:
        for s in line.split("\t")[1:3]:  # quoting off: STS-B has bare quotes inside sentences
            if s:
                seen.setdefault(s, None)
        if len(seen) >= n:
            break
    return list(seen)[:n]


def build(tmp: Path, name: str, toml: str, cache: Path, quick: bool) -> tuple[Path, float]:
    import edgepack

    target = tmp / f"{name}.toml"
    target.write_text(toml, encoding="utf-8")
    out = tmp / f"out-{name}"
    t0 = time.perf_counter()
    edgepack.build(target=str(target), out=out, cache_dir=cache, quick=quick, seed=0)
    return out, time.perf_counter() - t0


def teacher_reference(bundle: Path, sentences):
    """The teacher's fp32 torch embeddings of the sentences, tokenised as the bundle tokenises."""
    from tokenizers import Tokenizer

    from edgepack.modeling import load_hf_model, run_torch, wrap
    from edgepack.teacher import builtin_model_path

    manifest = json.loads((bundle / "edgepack.json").read_text(encoding="utf-8"))
    tok = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    head = wrap(load_hf_model(builtin_model_path(), "sentence-embedding"), "sentence-embedding", "bert", "mean", True)
    return run_torch(head, tok, sentences, manifest["tokenizer"]["max_length"])


def measure(bundle: Path, sentences, ref, reps: int) -> dict:
    from edgepack.measure.latency import measure_latency
    from edgepack.measure.stats import cosine_rows
    from edgepack.runtime import edgepack_runtime as rt

    manifest = json.loads((bundle / "edgepack.json").read_text(encoding="utf-8"))
    report = json.loads((bundle / "report.json").read_text(encoding="utf-8"))
    out = {}
    for art in manifest["artifacts"]:
        fmt = art["format"]
        b = rt.load_bundle(bundle, format=fmt, threads=1)
        cos = cosine_rows(b.embed(sentences), ref)
        buckets = [s["sequence_length"] for s in art.get("signatures") or []] or [32, 64, 128]
        lat = measure_latency(b, [], buckets, reps)
        out[fmt] = {
            "file": art["path"], "bytes": art["bytes"], "precision": art["precision"],
            "signatures": [s["name"] for s in art.get("signatures") or []],
            "cosine_vs_teacher_min": float(cos.min()), "cosine_vs_teacher_mean": float(cos.mean()),
            "latency_p50_ms": {str(k): v["p50_ms"] for k, v in lat["buckets"].items()},
            "requires": [{k: r.get(k) for k in ("runtime", "min_version", "android", "feature")} for r in art.get("requires") or []],
            "build_vs_student_fp32_min": report["metrics"]["formats"][fmt]["vs_student_fp32"]["cosine_min"],
        }
    return out


def profile_gates(target: str) -> dict:
    return tomllib.loads((REPO / "targets" / f"{target}.toml").read_text(encoding="utf-8")).get("budget", {})


def passes_profile(entry: dict, gates: dict) -> dict:
    """Would each format have passed the profile's own size and fp32-parity gates (as built here)?"""
    out = {}
    for fmt, m in entry.items():
        size_ok = m["bytes"] / 1e6 <= gates.get("max_size_mb", 1e9)
        parity_ok = m["build_vs_student_fp32_min"] >= gates.get("min_cosine_vs_student", 0.0)
        out[fmt] = {"size": size_ok, "vs_student_fp32": parity_ok}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="quick distillation, fewer sentences and reps")
    ap.add_argument("--sentences", type=int, default=None)
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--cache", default=None, help="edgepack work cache (default: a temp dir; reuse one to skip distillation)")
    args = ap.parse_args()
    sentences_n = args.sentences or (150 if args.quick else 400)
    reps = args.reps or (10 if args.quick else 30)

    import torch

    torch.set_num_threads(1)
    sentences = stsb_sentences(sentences_n)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = {"quick": args.quick, "sentences": len(sentences), "source": "STS-B dev (sentence1/sentence2, first unique)",
               "reps": reps, "threads": 1, "machine": f"{platform.machine()} {platform.processor()}", "cpus": os.cpu_count(),
               "started": started, "models": {}}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgepack-precision-") as tmp_s:
        tmp = Path(tmp_s)
        cache = Path(args.cache) if args.cache else tmp / "cache"
        ref = None
        for model, target in MODELS.items():
            entry = {"target": target, "options": {}, "gates": profile_gates(target)}
            for label, change in OPTIONS.items():
                name = f"{target}-{label}".replace(" ", "_").replace("+", "and")
                out, seconds = build(tmp, name, profile_text(target, change), cache, args.quick)
                if ref is None:
                    ref = teacher_reference(out, sentences)
                m = measure(out, sentences, ref, reps)
                entry["options"][label] = {"quantize": change, "build_s": round(seconds, 1), "formats": m,
                                           "passes_profile_gates": passes_profile(m, entry["gates"])}
                print(model, label, json.dumps({f: (v["bytes"], round(v["cosine_vs_teacher_mean"], 4)) for f, v in m.items()}), flush=True)
            # What the signatures cost: the profile's own precision, TFLite, one bucket (the longest).
            raw = tomllib.loads((REPO / "targets" / f"{target}.toml").read_text(encoding="utf-8"))
            longest = max(raw["shapes"]["sequence_buckets"])
            out, _ = build(tmp, f"{target}-single", profile_text(target, {}, buckets=[longest], formats=["tflite"]), cache, args.quick)
            single = json.loads((out / "edgepack.json").read_text(encoding="utf-8"))["artifacts"][0]["bytes"]
            shipped_label = "int4 embeddings + int8 matrices" if raw["quantize"].get("embedding_bits") == 4 else "int8"
            multi = entry["options"][shipped_label]["formats"]["tflite"]["bytes"]
            entry["signatures_cost"] = {"precision": shipped_label, "single_bucket": longest, "single_bytes": single,
                                        "multi_bytes": multi, "buckets": raw["shapes"]["sequence_buckets"],
                                        "ratio": multi / single, "bound": MAX_MULTI_OVER_SINGLE}
            results["models"][model] = entry
    results["total_s"] = round(time.perf_counter() - t_all, 1)
    write(results)


def needs_line(requires) -> str:
    """The highest minimum per runtime (a file with int4 lookups and int4 matrices needs both features)."""
    from edgepack.runtime.edgepack_runtime import _version_tuple

    top: dict[str, str] = {}
    for r in requires:
        if r["runtime"] not in top or _version_tuple(r["min_version"]) > _version_tuple(top[r["runtime"]]):
            top[r["runtime"]] = r["min_version"]
    return "; ".join(f"{k} ≥ {v}" for k, v in top.items()) or "any current"


def write(results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "precision.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    q = results["quick"]
    lines = ["# Weight precision: size, fidelity to the teacher, latency per bucket (issue #12)", "",
             f"`python bench/precision.py{' --quick' if q else ''}`, {results['started']}, {results['machine']} "
             f"({results['cpus']} CPUs, shared with other jobs), one thread, batch 1; fidelity on {results['sentences']} "
             f"STS-B dev sentences, latency p50 of {results['reps']} runs per bucket through the shipped runtime. "
             f"Total {results['total_s'] / 60:.0f} min.", ""]
    if q:
        lines += ["**Quick run**: the student is distilled with `--quick` (the profile's `quick_steps`, not its full "
                  "`steps`), so its fidelity to the teacher is lower than a full build's; fewer sentences and reps. "
                  "The relative cost of each precision is what this run shows; the full run is "
                  "`python bench/precision.py`.", ""]
    lines += ["| model | precision | format | file MB | cosine to teacher min / mean | p50 ms per bucket | needs on device |",
              "|---|---|---|---|---|---|---|"]
    for model, e in results["models"].items():
        for label, o in e["options"].items():
            for fmt, m in o["formats"].items():
                lat = " / ".join(f"{k}: {v:.2f}" for k, v in m["latency_p50_ms"].items())
                needs = needs_line(m["requires"])
                lines.append(f"| {model} | {label} | {fmt} | {m['bytes'] / 1e6:.2f} | {m['cosine_vs_teacher_min']:.4f} / "
                             f"{m['cosine_vs_teacher_mean']:.4f} | {lat} | {needs} |")
    lines += ["", "## One file, one signature per bucket", "",
              "| model | precision | buckets | multi-signature .tflite MB | single-bucket .tflite MB | ratio (bound) |", "|---|---|---|---|---|---|"]
    for model, e in results["models"].items():
        s = e["signatures_cost"]
        lines.append(f"| {model} | {s['precision']} | {', '.join(map(str, s['buckets']))} vs {s['single_bucket']} | "
                     f"{s['multi_bytes'] / 1e6:.2f} | {s['single_bytes'] / 1e6:.2f} | {s['ratio']:.3f} (≤ {s['bound']}) |")
    lines += ["", "## Against each profile's own gates", "",
              "Built ungated so every option is measured; this is whether the file would have passed the profile's "
              "size gate and its parity gate to the fp32 model (`min_cosine_vs_student`, on the build's held-out text).", "",
              "| model | precision | format | size gate | parity vs fp32 gate (min cosine) |", "|---|---|---|---|---|"]
    for model, e in results["models"].items():
        g = e["gates"]
        for label, o in e["options"].items():
            for fmt, ok in o["passes_profile_gates"].items():
                m = o["formats"][fmt]
                lines.append(f"| {model} | {label} | {fmt} | {'pass' if ok['size'] else 'FAIL'} (≤ {g.get('max_size_mb')} MB) | "
                             f"{'pass' if ok['vs_student_fp32'] else 'FAIL'} ({m['build_vs_student_fp32_min']:.4f} vs "
                             f"{g.get('min_cosine_vs_student', 0)}) |")
    lines += ["", "Runtime versions: the minimum each file's manifest records (`requires`); edgepack/quant/quantize.py "
              "says which versions were run and what they did. int4 matrices: ai-edge-litert 2.0.2 and 2.0.3 run the "
              "file without an error but wrong, 2.1.0 right; onnxruntime 1.19.2 runs 4-bit MatMulNBits right and is "
              "the oldest that imports here (1.17.3 needs numpy < 2), so the true ONNX minimum may be lower. An older "
              "LiteRT is refused by the Python runtime; on Android the golden cases (`checkGolden`) are what catches it."]
    (RESULTS / "precision.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
