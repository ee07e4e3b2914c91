"""The one latency meter. The build's report and gates (evaluate.py) and `edgepack bench` both call
`measure_latency`, so a number in report.md and one from `edgepack bench` mean the same thing.

Inputs, documented once:
- a bucket of N tokens is the first N token ids of the texts' encodings laid end to end ([CLS] and
  [SEP] included), every position attended: an input that costs what a real N-token text costs;
- "sentences" are the texts themselves, one call each with tokenisation included: what an app pays.
Each is run `warmup` times untimed first (interpreter allocation, caches), batch 1.
"""

from __future__ import annotations

import time

import numpy as np

from .stats import latency_percentiles

WARMUP = 3


def time_calls(fn, reps: int, warmup: int = WARMUP) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def summary(samples_ms, keep_samples: bool = False) -> dict:
    arr = np.asarray(samples_ms, dtype=np.float64)
    out = {
        **latency_percentiles(arr),
        "mean_ms": float(arr.mean()),
        "throughput_per_s": float(1000.0 / arr.mean()) if arr.mean() > 0 else 0.0,
    }
    if keep_samples:  # report.html draws the distribution
        out["samples_ms"] = [round(float(x), 4) for x in arr]
    return out


def bucket_ids(id_lists, seq: int) -> list[int]:
    filler = [t for ids in id_lists for t in ids] or [0]
    return (filler * (seq // len(filler) + 1))[:seq]


def measure_latency(bundle, texts, buckets, reps: int, warmup: int = WARMUP, keep_samples: bool = False) -> dict:
    """Per bucket: `reps` timed calls on a full-length input; then each of `texts` once."""
    texts = list(texts)
    id_lists = bundle.encode(texts) if texts else []
    out = {"buckets": {}}
    for seq in buckets:
        ids = bucket_ids(id_lists, seq)
        out["buckets"][str(seq)] = summary(time_calls(lambda: bundle.run_ids([ids]), reps, warmup), keep_samples)
    for t in texts[:warmup]:
        bundle.outputs([t])
    samples = []
    for t in texts:
        samples += time_calls(lambda: bundle.outputs([t]), 1, warmup=0)
    out["sentences"] = summary(samples, keep_samples) if samples else None
    lengths = [len(x) for x in id_lists]
    out["sentence_tokens"] = {"mean": float(np.mean(lengths)), "max": int(max(lengths))} if lengths else None
    return out
