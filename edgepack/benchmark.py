"""`edgepack bench`: latency (p50/p95/p99) and throughput of a bundle, at 1 and N interpreter threads,
per sequence bucket and on real sentences, with the peak memory of the process that ran it.

Each (format, threads) pair is measured in a fresh spawned process, so its peak RSS is that of an app
that loads this bundle (Python + numpy + tokenizers + one interpreter + the model) and nothing else:
no torch, no other format's interpreter, no earlier measurement's garbage.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .data import builtin_corpus, load_file
from .errors import BundleFormatError, DataError, IntegrityError, UsageError
from .measure.latency import WARMUP, measure_latency
from .runtime import edgepack_runtime as rt

DEFAULT_BUCKETS = (32, 64, 128)


def bench_texts(data=(), limit: int = 200, manifest: dict | None = None) -> tuple[list[str], str]:
    """Real sentences: --data files, else the built-in corpus, else the bundle's golden texts."""
    if data:
        texts = []
        for p in data:
            texts += [t for t in load_file(Path(p))[0] if t]
        if not texts:
            raise DataError(f"--data {', '.join(map(str, data))}: no usable text")
        return texts[:limit], ", ".join(map(str, data))
    try:
        texts = builtin_corpus()
        if texts:
            return texts[:limit], "built-in corpus"
    except OSError:  # a stripped install without the corpus file
        pass
    texts = [c["text"] for c in (manifest or {}).get("golden") or [] if c["text"]]
    return texts[:limit], "golden texts"


def buckets_of(manifest: dict, fmt: str) -> list[int]:
    """TFLite: the shipped buckets. ONNX and ExecuTorch (dynamic length): the same lengths, so they compare."""
    static = sorted({b for a in manifest["artifacts"] if a["format"] == fmt for b in a.get("buckets") or ()})
    if not static:
        static = sorted({b for a in manifest["artifacts"] for b in a.get("buckets") or ()})
    limit = int(manifest["tokenizer"]["max_length"])
    chosen = static or [b for b in DEFAULT_BUCKETS if b <= limit] or [limit]
    return [b for b in chosen if b <= limit] or [limit]


def _rss_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _peak_rss_mb() -> float:
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def measure(root: str, fmt: str, threads: int, texts: list[str], buckets: list[int], reps: int, warmup: int = WARMUP) -> dict:
    """One (format, threads) measurement with the build's latency meter; runs in its own process (see module doc)."""
    rss_before = _rss_mb()
    t0 = time.perf_counter()
    bundle = rt.load_bundle(root, format=fmt, threads=threads)
    load_ms = (time.perf_counter() - t0) * 1000
    rss_loaded = _rss_mb()
    out = {"format": fmt, "threads": threads, "load_ms": load_ms, **measure_latency(bundle, texts, buckets, reps, warmup)}
    # TFLite: which signature of the one file served each bucket (a bucket runs in the shortest that fits)
    out["signatures"] = {str(seq): bundle.backend.bucket_for(seq)[1] for seq in buckets} if bundle.signatures else {}
    out["memory"] = {"rss_before_load_mb": rss_before, "rss_after_load_mb": rss_loaded, "peak_rss_mb": _peak_rss_mb()}
    return out


def run_isolated(fn, *args):
    import concurrent.futures
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()


def bench_bundle(path, formats=None, threads=None, data=(), sentences: int = 200, reps: int = 50,
                 isolate: bool = True) -> dict:
    root = Path(path)
    if not root.is_dir():
        raise BundleFormatError(f"{path}: no such bundle directory")
    try:
        manifest = rt.read_manifest(root)
        rt.verify_files(root, manifest)
    except rt.BundleFormatError as exc:
        raise BundleFormatError(str(exc)) from None
    except rt.BundleIntegrityError as exc:
        raise IntegrityError(f"{exc} (run `edgepack check {path}`)") from None
    available = sorted({a["format"] for a in manifest["artifacts"]})
    formats = list(formats or available)
    for fmt in formats:
        if fmt not in available:
            raise UsageError(f"--format {fmt}: bundle has {', '.join(available)}")
    n_threads = sorted({1, int(threads or os.cpu_count() or 1)})
    texts, source = bench_texts(data, sentences, manifest)
    result = {"bundle": str(root), "target": manifest.get("target"), "texts": len(texts), "text_source": source,
              "cpu_count": os.cpu_count(), "machine": _machine(), "runs": []}
    for fmt in formats:
        for n in n_threads:
            args = (str(root), fmt, n, texts, buckets_of(manifest, fmt), reps)
            result["runs"].append(run_isolated(measure, *args) if isolate else measure(*args))
    return result


def _machine() -> str:
    import platform

    return f"{platform.machine()} {platform.processor() or platform.system()}".strip()


def render(result: dict) -> str:
    lines = [
        f"bench {result['bundle']} (target {result['target']}) on {result['machine']}, {result['cpu_count']} CPUs; "
        f"sentences: {result['texts']} from {result['text_source']}",
        "",
        f"{'format':<7} {'thr':>3} {'input':<22} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'items/s':>8}",
    ]
    for run in result["runs"]:
        names = run.get("signatures") or {}
        rows = [(f"{seq} tokens" + (f" {names[seq]}" if seq in names else ""), s) for seq, s in run["buckets"].items()]
        if run["sentences"]:
            rows.append((f"sentences (~{run['sentence_tokens']['mean']:.0f} tok)", run["sentences"]))
        for label, s in rows:
            lines.append(f"{run['format']:<7} {run['threads']:>3} {label:<22} {s['p50_ms']:>8.2f} {s['p95_ms']:>8.2f} "
                         f"{s['p99_ms']:>8.2f} {s['throughput_per_s']:>8.1f}")
        mem = run["memory"]
        lines.append(f"{run['format']:<7} {run['threads']:>3} load {run['load_ms']:.0f} ms, RSS {mem['rss_before_load_mb']:.0f} -> "
                     f"{mem['rss_after_load_mb']:.0f} MB after load, peak {mem['peak_rss_mb']:.0f} MB")
    lines += ["", "Latency is batch 1. x86 numbers differ from ARM phones (XNNPACK/KleidiAI kernels): measure on the device."]
    return "\n".join(lines) + "\n"
