"""Golden cases: a few texts with their token ids and the outputs each shipped format gave at build
time, so any runtime (the Python wrapper, the Android app, a CI job) can prove it reproduces the build.
`golden_matches` is the rule every checker applies (android_demo's GoldenCheck.java mirrors it).

`expected[fmt]` is the output list for a format without signatures (ONNX), and {signature: output}
for one with them (TFLite, issue #12): every signature the case fits in, so each bucket of the one
file is proven, not only the one the runtime would pick. Dynamic int8 quantises activations per call,
so padding to a longer bucket moves the output a little; each signature keeps its own expectation."""

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
        expected = {fmt: _expected(b, tok_ids) for fmt, b in bundles.items()}
        cases.append({"text": text, "ids": tok_ids, "expected": expected})
    return cases


def _expected(bundle, ids):
    if not bundle.signatures:
        return bundle.run_ids([ids])[0].round(6).tolist()
    return {name: bundle.run_ids([ids], signature=name)[0].round(6).tolist()
            for name in fitting_signatures(bundle.manifest, bundle.format, len(ids))}


def fitting_signatures(manifest: dict, fmt: str, length: int) -> list[str]:
    """The signatures of `fmt`'s artifact whose bucket holds `length` tokens, shortest first."""
    art = next((a for a in manifest["artifacts"] if a["format"] == fmt), {})
    sigs = sorted(art.get("signatures") or [], key=lambda s: s["sequence_length"])
    return [s["name"] for s in sigs if s["sequence_length"] >= length]


def golden_runs(case: dict, fmt: str):
    """(signature or None, expected output) for each run a checker makes of this case in `fmt`."""
    expected = case.get("expected", {}).get(fmt)
    if expected is None:
        return []
    if isinstance(expected, dict):
        return list(expected.items())  # as written: shortest bucket first
    return [(None, expected)]


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
