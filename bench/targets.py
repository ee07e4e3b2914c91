"""Targets x runtimes (issue #14): each shipped target that makes an embedding bundle, built from the
built-in teacher, then every artifact run in the runtime it ships for, side by side in one run.

    python bench/targets.py             # the builds, STS-B dev (1,500 pairs), 300 timed sentences
    python bench/targets.py --quick     # --quick builds, 150 pairs, 40 timed sentences: checks the script

Builds: `python -m edgepack build --target T --out ... --cache-dir WORK` for each T in TARGETS, through the
CLI, all with one work cache: the distilled student is trained once, by the first target that needs it, and
the others re-use it (they share `[student]`), so each build time after the first is that target's own
export, quantisation and checks on a warm cache.

Rows: every (target, format) through the bundle's own `edgepack_runtime.py` (onnxruntime, LiteRT or
ExecuTorch, as an app's Python would run it), and the web bundle in headless Chromium (its demo page's
transformers.js + onnxruntime-web WebAssembly pipeline, web/browser.mjs), beside the torch teacher and
Optimum's dynamic int8 teacher, the speed reference. Quality: STS-B dev Spearman of the pair cosines, and
the cosine of each sentence's embedding to the torch teacher's. Latency: batch 1, one thread, tokenisation
included, real STS-B sentences; the Python rows take turns sentence by sentence (a shared machine's load
hits them alike); the browser times its own page on the same sentences, so its ratio is against the
same Optimum row but not interleaved with it. Writes bench/results/targets.{json,md}.

Latency is x86 here: ARM phones and browsers on other machines differ; the ratios are what carry over best.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))

import baselines  # noqa: E402  (sets the offline environment before torch/transformers load)
import numpy as np  # noqa: E402

RESULTS = BENCH / "results"
# (target, what runs each format). The teacher targets show what distillation buys; linux-arm64 builds the
# same int8 ONNX as x86-64 and is left out (no ARM machine here to time it on).
TARGETS = {
    "android-arm64": {"tflite": "LiteRT (ai-edge-litert)", "onnx": "onnxruntime"},
    "android-arm64-executorch": {"pte": "ExecuTorch (XNNPACK)"},
    "web": {"onnx": "onnxruntime (Python; the same file the browser runs)", "browser": "transformers.js + onnxruntime-web (WASM) in headless Chromium"},
    "android-arm64-teacher": {"tflite": "LiteRT (ai-edge-litert)", "onnx": "onnxruntime"},
    "x86-64": {"onnx": "onnxruntime"},
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def build(target: str, out: Path, work: Path, quick: bool) -> dict:
    """One build through the CLI, its progress lines into <out>.log; wall clock and exit code."""
    cmd = [sys.executable, "-m", "edgepack", "build", "--target", target, "--out", str(out), "--cache-dir", str(work), "--force"]
    cmd += ["--quick"] if quick else []
    log(f"build {target}: {shlex.join(cmd[1:])}")
    t0 = time.perf_counter()
    with open(f"{out}.log", "w", encoding="utf-8") as fh:
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO).returncode
    wall = round(time.perf_counter() - t0, 1)
    rec = {"target": target, "command": "python " + shlex.join(cmd[1:]), "rc": rc, "wall_s": wall, "bundle": str(out)}
    if rc == 0:
        manifest = json.loads((out / "edgepack.json").read_text(encoding="utf-8"))
        rec["student"] = (manifest.get("student") or {}).get("description")
        rec["files"] = {a["format"]: {"path": a["path"], "bytes": a["bytes"], "precision": a.get("precision")} for a in manifest["artifacts"]}
    else:
        rec["error"] = Path(f"{out}.log").read_text(encoding="utf-8").strip().splitlines()[-1:]
    log(f"build {target}: exit {rc} in {wall:.0f} s")
    return rec


class BrowserRow:
    """The web bundle's demo-page pipeline in headless Chromium: embeddings and per-text latency."""

    def __init__(self, name: str, bundle: Path, tmp: Path):
        import web  # bench/web.py: runs web/browser.mjs

        self.name, self.bundle, self.tmp, self._web = name, bundle, tmp, web
        manifest = json.loads((bundle / "edgepack.json").read_text(encoding="utf-8"))
        self.files = [bundle / a["path"] for a in manifest["artifacts"]]

    def _run(self, texts, *extra) -> dict:
        got = self._web.in_browser(self.bundle, list(texts), self.tmp, *extra)
        if "error" in got:
            raise RuntimeError(f"the web bundle did not run in Chromium: {got['error']}")
        return got

    def embed(self, texts):
        return baselines.normalise(np.asarray(self._run(texts)["embeddings"], dtype=np.float32))

    def latency(self, texts, repeats: int) -> dict:
        per_text = self._run(texts, "--latency", "--repeats", str(repeats))["latency"]["per_text_ms"]
        arr = np.asarray([min(times) if len(times) > 1 else times[0] for times in per_text])  # best of the repeats per text
        return {"p50_ms": float(np.percentile(arr, 50)), "p95_ms": float(np.percentile(arr, 95)), "mean_ms": float(arr.mean()),
                "n": len(arr), "best_of": repeats}


def markdown(result: dict) -> str:
    m = result["meta"]
    lines = [
        "# Targets x runtimes (issue #14)",
        "",
        f"`{m['command']}`  ",
        f"{m['machine']}, {m['cpu_count']} CPUs; {m['date']}; edgepack {m['commit']}; whole run {m['wall_s'] / 60:.0f} min.",
        "",
        f"STS-B dev: {m['pairs']} pairs ({m['sentences']} sentences), never used to build. Latency: batch 1, one thread, "
        f"tokenisation included, {m['timed']} dev sentences (mean {m['timed_tokens_mean']:.1f} tokens); the Python rows "
        "interleaved sentence by sentence, the browser row timed by its page (best of "
        f"{m['browser_repeats']} calls per sentence) in the same run. x86 here: ARM phones differ.",
        "",
        "| target | format | runtime | model file MB | STS-B Spearman (% of teacher) | cosine to teacher mean / min | p50 ms | mean ms | speed-up vs Optimum int8 (mean) | build |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        b = result["builds"].get(r.get("target") or "", {})
        lines.append(
            f"| {r.get('target') or '—'} | {r.get('format') or '—'} | {r['runtime']} | {r['bytes_largest_file'] / 1e6:.2f} | "
            f"{r['stsb_spearman']:.4f} ({r['pct_of_teacher']:.1f}%) | {r['cosine_to_teacher_mean']:.4f} / {r['cosine_to_teacher_min']:.4f} | "
            f"{r['latency']['p50_ms']:.2f} | {r['latency']['mean_ms']:.2f} | {r['speedup_mean']:.2f}× | "
            + (f"{b['wall_s']:.0f} s" if b else "—") + " |")
    failed = [b for b in result["builds"].values() if b["rc"] != 0]
    for b in failed:
        lines.append(f"\n**{b['target']}: the build failed (exit {b['rc']}), so it has no row:** {' '.join(b.get('error') or [])}")
    first = next(iter(result["builds"].values()), None)
    lines += ["", "Builds (one shared work cache: "
              + (f"the student was distilled by the first, `{first['target']}`; the others re-used it):" if first else "none):"), ""]
    lines += [f"- `{b['command']}`: exit {b['rc']}, {b['wall_s']:.0f} s; student {b.get('student')}" for b in result["builds"].values()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--quick", action="store_true", help="--quick builds, 150 pairs, 40 timed sentences (checks the script)")
    ap.add_argument("--pairs", type=int, default=None, help="STS-B dev pairs (default all, 150 with --quick)")
    ap.add_argument("--timed", type=int, default=None, help="sentences timed at batch 1 (default 300, 40 with --quick)")
    ap.add_argument("--browser-repeats", type=int, default=3, help="calls per sentence in the browser; the best counts (default 3)")
    ap.add_argument("--work", type=Path, default=Path.home() / ".cache" / "edgepack-bench" / "targets",
                    help="bundles and the shared work cache (default ~/.cache/edgepack-bench/targets)")
    ap.add_argument("--only", action="append", choices=list(TARGETS), help="build and measure only these targets")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results directory (targets.json, targets.md)")
    args = ap.parse_args(argv)
    stsb = baselines.default_stsb()
    if not stsb.is_file():
        print(f"error: STS-B dev not found at {stsb} (../shared/data beside the clone)", file=sys.stderr)
        return 2
    targets = [t for t in TARGETS if not args.only or t in args.only]
    t_start = time.perf_counter()
    args.work.mkdir(parents=True, exist_ok=True)
    builds = {t: build(t, args.work / t, args.work / "work", args.quick) for t in targets}

    import torch
    from tokenizers import Tokenizer

    from edgepack.teacher import builtin_model_path

    torch.set_num_threads(1)
    teacher = builtin_model_path()
    pairs = baselines.read_stsb(stsb, args.pairs or (150 if args.quick else None))
    sentences = list(dict.fromkeys(s for a, b, _ in pairs for s in (a, b)))
    index = {s: i for i, s in enumerate(sentences)}
    n_timed = args.timed or (40 if args.quick else 300)
    timed = sentences[:: max(1, len(sentences) // n_timed)][:n_timed]
    tok = Tokenizer.from_file(str(teacher / "tokenizer.json"))
    tok.no_padding()
    baselines.TEACHER_TOKENIZER = tok
    onnx = baselines.optimum_models(teacher, args.work / "baselines")

    specs = [(None, None, "torch fp32 (sentence-transformers), the teacher", lambda: baselines.TorchTeacher(teacher)),
             (None, None, "onnxruntime: Optimum arm64 dynamic int8 teacher (the reference)",
              lambda: baselines.OnnxMeanPool("optimum int8", onnx["int8-per-channel"], teacher / "tokenizer.json"))]
    browser_spec = None
    with tempfile.TemporaryDirectory(prefix="edgepack-targets-") as tmp_s:
        tmp = Path(tmp_s)
        for t, rec in builds.items():
            if rec["rc"] != 0:
                continue
            for fmt, runtime in TARGETS[t].items():
                bundle = Path(rec["bundle"])
                if fmt == "browser":
                    browser_spec = (t, "onnx", runtime, lambda b=bundle: BrowserRow("web in Chromium", b, tmp))
                elif fmt in rec["files"]:
                    specs.append((t, fmt, runtime, lambda b=bundle, f=fmt, t=t: baselines.BundleRow(f"{t} ({f})", b, f)))
        rows, models, teacher_emb = [], [], None
        for t, fmt, runtime, make in specs + ([browser_spec] if browser_spec else []):
            log(f"quality: {t or 'teacher'} {fmt or ''} ({runtime})")
            model = make()
            if teacher_emb is None:
                teacher_emb = baselines.normalise(model.embed(sentences))
            rows.append({"target": t, "format": fmt, "runtime": runtime, **baselines.quality(model, sentences, pairs, index, teacher_emb)})
            models.append(model)
        python_models = [m for m in models if not isinstance(m, BrowserRow)]
        log(f"latency: {len(timed)} sentences x {len(python_models)} Python runtimes, interleaved")
        for r, lat in zip(rows, baselines.interleaved_latency(python_models, timed, "one")):
            r["latency"] = lat
        if browser_spec:
            log("latency: the web bundle in Chromium")
            rows[-1]["latency"] = models[-1].latency(timed, args.browser_repeats)
    reference = rows[1]["latency"]["mean_ms"]
    for r in rows:
        r["pct_of_teacher"] = 100 * r["stsb_spearman"] / rows[0]["stsb_spearman"]
        r["speedup_mean"] = reference / r["latency"]["mean_ms"]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    result = {
        "meta": {"command": " ".join(["python bench/targets.py", shlex.join(argv if argv is not None else sys.argv[1:])]).strip(),
                 "machine": f"{platform.machine()} {platform.processor() or platform.system()}", "cpu_count": os.cpu_count(),
                 "date": time.strftime("%Y-%m-%d"), "commit": commit, "quick": args.quick, "pairs": len(pairs),
                 "sentences": len(sentences), "timed": len(timed),
                 "timed_tokens_mean": float(np.mean([len(tok.encode(s).ids) for s in timed])),
                 "browser_repeats": args.browser_repeats, "threads": 1, "wall_s": round(time.perf_counter() - t_start, 1),
                 "arm_note": "x86 numbers differ from ARM; measure on the device"},
        "builds": builds,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    baselines.write_atomic(args.out / "targets.json", json.dumps(result, indent=2) + "\n")
    md = markdown(result)
    baselines.write_atomic(args.out / "targets.md", md)
    print(md)
    return 0 if all(b["rc"] == 0 for b in builds.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
