"""Accuracy-aware fallback: when an int8 build misses a parity gate, keep the most sensitive layers in
float, one at a time, until the gate passes; past `quantize.fallback_max_layers`, fail naming them.

Sensitivity of a layer = how much the output error (vs the fp32 graph, on training texts) shrinks when
only that layer is kept in float. Measured per format on the exported graphs themselves, so it sees
what the int8 kernels do, and ranked once; the gate is then re-checked on the held-out texts, which
the ranking never saw. Static int8 re-uses its cached calibration ranges (calibrate.py), so each trial
costs one re-quantisation and a few dozen inferences, not a re-calibration.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from .context import Artifact, BuildContext
from .stages import calibrate, quantize
from .stats import cosine_rows

INT8_MODES = ("static-int8", "dynamic-int8")
PROBE_TEXTS = 32  # training texts the ranking runs on: enough to rank, cheap enough to run per layer
_PARITY_WORDS = ("cosine", "agreement")


def applies(ctx: BuildContext, fails: list[str]) -> bool:
    """Only parity can be bought back with float layers; size and latency get worse, not better."""
    spec = ctx.target.quantize
    return bool(
        fails
        and spec.fallback_max_layers > 0
        and spec.mode in INT8_MODES
        and all(any(w in f for w in _PARITY_WORDS) for f in fails)
    )


def output_error(task: str, got: np.ndarray, ref: np.ndarray) -> float:
    """Embeddings are compared by cosine (what apps use); logits by squared error relative to their energy."""
    if task == "text-classification":
        return float(((got - ref) ** 2).sum() / max(float((ref**2).sum()), 1e-12))
    cos = cosine_rows(got, ref)
    return float((1.0 - cos).mean())


# -- running one graph on the probe texts ------------------------------------------------------------

def _run_onnx(path: Path, calib: calibrate.Calibration) -> np.ndarray:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return np.concatenate([sess.run(None, {n: f[n] for n in names})[0] for f in calibrate.onnx_feeds(calib)])


def _run_tflite(path: Path, calib: calibrate.Calibration, seq: int) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=1)
    runner = interp.get_signature_runner()
    return np.concatenate([next(iter(runner(**f).values())) for f in calibrate.tflite_feeds(calib, seq)])


class _Probe:
    """Quantise one format's representative artifact with a given exclusion list and measure its error."""

    def __init__(self, ctx: BuildContext, fmt: str, calib, probe: calibrate.Calibration, work: Path):
        arts = [a for a in ctx.fp32_artifacts if a.format == fmt]
        # TFLite: rank on the longest bucket (every probe fits); exclusions then apply to all buckets.
        self.art: Artifact = max(arts, key=lambda a: a.sequence_length or 0)
        self.ctx, self.fmt, self.calib, self.probe, self.work = ctx, fmt, calib, probe, work
        self.reference = self._run(Path(self.art.path))
        self.trials = 0

    def _run(self, path: Path) -> np.ndarray:
        if self.fmt == "onnx":
            return _run_onnx(path, self.probe)
        return _run_tflite(path, self.probe, self.art.sequence_length)

    def error(self, exclude) -> float:
        spec = self.ctx.target.quantize
        dst = self.work / f"trial{self.trials}.{self.fmt}"
        self.trials += 1
        src = Path(self.art.path)
        excl = tuple(spec.exclude) + tuple(exclude)
        if self.fmt == "onnx":
            quantize.quantize_onnx(src, dst, spec.mode, spec.per_channel, excl, self.calib, spec.full_integer, spec.activations,
                                   block_size=spec.block_size)
        else:
            quantize.quantize_tflite(src, dst, spec.mode, excl, self.calib, self.art.sequence_length,
                                     spec.full_integer, spec.activations)
        err = output_error(self.ctx.teacher.task, self._run(dst), self.reference)
        dst.unlink(missing_ok=True)
        return err

    def layers(self) -> list[str]:
        """Layers int8 touches in this format, minus those the profile already keeps in float."""
        spec = self.ctx.target.quantize
        path = Path(self.art.path)
        full = spec.full_integer or spec.mode == "dynamic-int8"
        found = calibrate.onnx_quantizable(path, full) if self.fmt == "onnx" else calibrate.tflite_quantizable(path, full)
        from .layer_names import matches

        return [name for name in found if name and not matches(name, "", spec.exclude)]


def rank_layers(probe: _Probe) -> tuple[float, list[tuple[str, float]]]:
    """(error with every layer quantised, [(layer, error removed by keeping it float)], best first)."""
    base = probe.error(())
    gains = [(layer, base - probe.error((layer,))) for layer in probe.layers()]
    gains.sort(key=lambda x: -x[1])
    return base, gains


def _parity_summary(m: dict) -> dict:
    return {"vs_teacher": m["vs_teacher"], "vs_student_fp32": m["vs_student_fp32"], "size_bytes": m["size_bytes"]}


def recover(ctx: BuildContext, metrics: dict, fails: list[str], refs_cache: dict | None = None):
    """Returns (ctx, metrics, fails) after the fallback; metrics gain a "fallback" entry for the report."""
    from .stages import bundle as bundle_stage
    from .stages import validate

    spec = ctx.target.quantize
    failing = [fmt for fmt in metrics["formats"] if validate.gate_failures(ctx, {"formats": {fmt: metrics["formats"][fmt]}})]
    calib = quantize.calibration_for(ctx)
    max_length = min(ctx.teacher.max_length, max(ctx.target.sequence_buckets))
    probe_texts = list(ctx.texts.train or ctx.texts.validation)[:PROBE_TEXTS]
    probe_set = calibrate.encode_texts(calibrate.load_tokenizer(ctx.tokenizer_dir), probe_texts, max_length)
    report = {"max_layers": spec.fallback_max_layers, "formats": {}}
    kept: dict[str, list[str]] = {}
    refs_cache = {} if refs_cache is None else refs_cache
    with tempfile.TemporaryDirectory(prefix="edgepack-fallback-", dir=ctx.work_dir) as tmp:
        for fmt in failing:
            probe = _Probe(ctx, fmt, calib, probe_set, Path(tmp))
            base, ranking = rank_layers(probe)
            entry = {
                "before": _parity_summary(metrics["formats"][fmt]),
                "probe_error_all_int8": base,
                "sensitivity": [{"layer": name, "error_removed": gain} for name, gain in ranking[:12]],
                "kept_float": [],
                "passed": False,
            }
            fmt_ctx = dataclasses.replace(ctx, target=dataclasses.replace(ctx.target, formats=(fmt,)))
            kept[fmt] = []
            for name, _gain in ranking[: spec.fallback_max_layers]:
                kept[fmt].append(name)
                fmt_ctx = _requantise(fmt_ctx, calib, kept, fmt, bundle_stage)
                trial = validate.evaluate(fmt_ctx, reps=3, refs_cache=refs_cache)
                if not validate.gate_failures(fmt_ctx, trial):
                    entry["passed"] = True
                    break
            entry["kept_float"] = list(kept[fmt])
            report["formats"][fmt] = entry
            # Keep the other formats' artifacts in the context, with this format's new ones.
            others = tuple(a for a in ctx.artifacts if a.format != fmt)
            ctx = dataclasses.replace(ctx, artifacts=others + tuple(a for a in fmt_ctx.artifacts if a.format == fmt))
    ctx = dataclasses.replace(ctx, artifacts=tuple(sorted(ctx.artifacts, key=_artifact_order(ctx))))
    bundle_stage.write_manifest(ctx.staging_dir, bundle_stage.manifest_for(ctx))
    final = validate.evaluate(ctx, refs_cache=refs_cache)
    for fmt, entry in report["formats"].items():
        entry["after"] = _parity_summary(final["formats"][fmt])
    final["fallback"] = report
    fails = validate.gate_failures(ctx, final)
    for fmt, entry in report["formats"].items():
        if not entry["passed"] or any(f.startswith(f"{fmt}:") for f in fails):
            names = ", ".join(entry["kept_float"]) or "none"
            fails.append(
                f"{fmt}: accuracy-aware fallback kept {len(entry['kept_float'])} most sensitive layer(s) in float "
                f"({names}; quantize.fallback_max_layers = {spec.fallback_max_layers}) and the gate still fails"
            )
    return ctx, final, fails


def _artifact_order(ctx: BuildContext):
    order = {(a.format, a.sequence_length): i for i, a in enumerate(ctx.fp32_artifacts)}
    return lambda a: order.get((a.format, a.sequence_length), 0)


def _requantise(fmt_ctx: BuildContext, calib, kept: dict, fmt: str, bundle_stage) -> BuildContext:
    arts = quantize.quantize_artifacts(fmt_ctx, calib, {fmt: kept[fmt]}, formats=(fmt,))
    others = tuple(a for a in fmt_ctx.artifacts if a.format != fmt)
    fmt_ctx = dataclasses.replace(fmt_ctx, artifacts=others + arts)
    # The staged manifest carries every file's sha256; the runtime verifies them before loading.
    bundle_stage.write_manifest(fmt_ctx.staging_dir, bundle_stage.manifest_for(fmt_ctx))
    return fmt_ctx
