"""Golden cases: a few texts with their token ids and the outputs each shipped format gave at build
time, so any runtime (the Python wrapper, the Android app, a CI job) can prove it reproduces the build.
`golden_matches` is the rule every checker applies (android_demo's GoldenCheck.java mirrors it)."""

from __future__ import annotations

import numpy as np

GOLDEN_EXTRA = (
    "",
    "Café naïve résumé — ÅÉÎ",
    "多语言文本 and emoji 🙂👍",
    "A long input " + "that keeps going and going " * 60,
)
# How far a re-run may drift from the golden outputs: int8 kernels differ slightly across CPUs.
GOLDEN_TOLERANCE = {"sentence-embedding": {"min_cosine": 0.999}, "text-classification": {"max_abs_diff": 0.05, "same_argmax": True}}


def golden_cases(bundles: dict, validation_texts) -> list[dict]:
    """`bundles`: format -> loaded bundle, in the target's format order (the first one tokenises)."""
    texts = list(validation_texts[:6]) + list(GOLDEN_EXTRA)
    first = next(iter(bundles.values()))
    cases = []
    for text, tok_ids in zip(texts, first.encode(texts)):
        expected = {fmt: b.run_ids([tok_ids])[0].round(6).tolist() for fmt, b in bundles.items()}
        cases.append({"text": text, "ids": tok_ids, "expected": expected})
    return cases


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
