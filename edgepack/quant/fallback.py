"""Accuracy-aware fallback: when an int8 build misses a parity gate, keep the most sensitive layers in
float, one at a time, until the gate passes; past `quantize.fallback_max_layers`, the gate (stages/
validate.py) fails naming them.

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

from ..context import Artifact, BuildContext
from ..export import signature_name
from ..measure.evaluate import evaluate
from ..measure.gates import GateFailure, gate_failures
from ..measure.stats import cosine_rows
from ..targets import QuantizeSpec
from ..tokenizer import load_tokenizer
from . import calibrate, layer_names, quantize
from .layer_names import matches

INT8_MODES = ("static-int8", "dynamic-int8")
PROBE_TEXTS = 32  # training texts the ranking runs on: enough to rank, cheap enough to run per layer


def applies(spec: QuantizeSpec, fails: list[GateFailure]) -> bool:
    """Only parity lost to int8 can be bought back with float layers; size and latency get worse, not better, and a
    teacher gate that the fp32 student misses itself stays missed (a classifier build that missed agreement 0.9 with
    the fp32 student at 0.887 spent 2 min 29 s keeping layers float, then failed)."""
    return bool(fails and spec.fallback_max_layers > 0 and spec.mode in INT8_MODES
                and all(f.kind == "parity" and not f.student_misses for f in fails))


def output_error(task: str, got: np.ndarray, ref: np.ndarray) -> float:
    """Embeddings are compared by cosine (what apps use); logits by squared error relative to their energy. In float64:
    1 - cosine in float32 rounds to 0 below ~1e-7, where a small student's dynamic-int8 error can sit, and every
    layer then ranked as removing nothing."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
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
    runner = interp.get_signature_runner(signature_name(seq))
    return np.concatenate([next(iter(runner(**f).values())) for f in calibrate.tflite_feeds(calib, seq)])


class _Probe:
    """Quantise one format's representative artifact with a given exclusion list and measure its error."""

    def __init__(self, ctx: BuildContext, fmt: str, calib, probe: calibrate.Calibration, work: Path):
        # One artifact per format. TFLite: rank through the longest bucket's signature (every probe
        # fits); the exclusions then apply to every signature (they share the weights).
        self.art: Artifact = next(a for a in ctx.fp32_artifacts if a.format == fmt)
        self.ctx, self.fmt, self.calib, self.probe, self.work = ctx, fmt, calib, probe, work
        self.reference = self._run(Path(self.art.path))
        self.trials = 0
        self.sizes: dict[tuple, int] = {}  # exclusion -> bytes of the file it made

    def _run(self, path: Path) -> np.ndarray:
        if self.fmt == "onnx":
            return _run_onnx(path, self.probe)
        return _run_tflite(path, self.probe, max(self.art.buckets))

    def error(self, exclude) -> float:
        spec = self.ctx.target.quantize
        dst = self.work / f"trial{self.trials}.{self.fmt}"
        self.trials += 1
        src = Path(self.art.path)
        excl = tuple(spec.exclude) + tuple(exclude)
        # The same call the build makes, so every [quantize] option (block sizes, int4 embeddings) holds.
        quantize.quantize_file(src, dst, self.fmt, spec, excl, self.calib, self.art.buckets)
        err = output_error(self.ctx.teacher.task, self._run(dst), self.reference)
        self.sizes[tuple(exclude)] = dst.stat().st_size
        dst.unlink(missing_ok=True)
        return err

    def layers(self) -> list[str]:
        """Layers int8 touches in this format, minus those the profile already keeps in float."""
        spec = self.ctx.target.quantize
        path = Path(self.art.path)
        # Dynamic int8 changes only the ops with a constant weight: a layer without one (an activation function,
        # the parent scope of the embeddings, a product of two activations) would be a trial that keeps nothing
        # float: 16 of the 34 layers of the bench classifier's TFLite graph, each a re-quantisation and a probe run.
        weights_only = spec.mode == "dynamic-int8"
        found = (calibrate.onnx_quantizable(path, spec.full_integer, weights_only) if self.fmt == "onnx"
                 else calibrate.tflite_quantizable(path, spec.full_integer, weights_only))
        names = [name for name in found if name and not matches(name, "", spec.exclude)]
        if self.fmt == "onnx" and spec.kept_weights == "int8":
            names = matmul_layers(path, names)
        return names


class _TorchProbe:
    """`_Probe` for ExecuTorch: a lowered .pte cannot be re-quantised, and exporting one per trial takes ~25 s on
    MiniLM's student, so layers are ranked on the torchao-quantised torch head in eager mode (the module the .pte
    is exported from: the same int8 weights and dynamic int8 activations, in torchao's reference kernels rather
    than XNNPACK's). The gate is then re-checked on real .pte files, which the ExecuTorch runtime runs."""

    def __init__(self, ctx: BuildContext, probe: calibrate.Calibration):
        from ..export import shipped_head

        self.ctx, self.probe, self.trials = ctx, probe, 0
        self.head = shipped_head(ctx.student.dir, ctx.teacher, max(ctx.target.sequence_buckets), ctx.options.allow_pickle)
        self.reference = self._run(self.head)
        # The size gate's estimate (`affordable`): a Linear kept in float stores 4 bytes a weight instead of 1 (int8)
        # or 1/2 (8da4w's int4); its scales are left out of the estimate.
        self._extra_per_weight = 4 - (0.5 if ctx.target.quantize.weight_bits == 4 else 1)
        shipped = next(a for a in ctx.artifacts if a.format == "pte")
        self.sizes: dict[tuple, int] = {(): (ctx.staging_dir / shipped.path).stat().st_size}
        self._weights = self._linear_weights()

    def _run(self, head) -> np.ndarray:
        import torch

        # the ONNX probe's feeds: one text per run at its own length
        with torch.no_grad():
            return np.concatenate([head(*(torch.from_numpy(f[n]) for n in ("input_ids", "attention_mask"))).float().numpy()
                                   for f in calibrate.onnx_feeds(self.probe)])

    def _linear_weights(self) -> dict[str, int]:
        import torch

        return {layer_names.torch_layer(fqn): m.weight.numel() for fqn, m in self.head.named_modules() if isinstance(m, torch.nn.Linear)}

    def error(self, exclude) -> float:
        from .executorch import quantize_head

        spec = self.ctx.target.quantize
        self.trials += 1
        err = output_error(self.ctx.teacher.task, self._run(quantize_head(self.head, spec, tuple(spec.exclude) + tuple(exclude))),
                           self.reference)
        self.sizes[tuple(exclude)] = self.sizes[()] + int(self._extra_per_weight * sum(self._weights.get(name, 0) for name in exclude))
        return err

    def layers(self) -> list[str]:
        """The linear layers (what int8 arithmetic changes; the lookups only store int8 or int4 rows), minus those
        the profile already keeps in float."""
        spec = self.ctx.target.quantize
        return [name for name in self._weights if not matches(name, "", spec.exclude)]


def matmul_layers(path: Path, names: list[str]) -> list[str]:
    """The layers among `names` that hold a matrix product and no lookup (`kept_weights = "int8"`): int8 weights
    in float arithmetic buy back what a MatMul's int8 arithmetic costs. A lookup has no int8 arithmetic, and
    keeping one in float would cost its whole table in float (megabytes)."""
    import onnx

    ops = {n.name: n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}
    keep = []
    for name in names:
        kinds = {ops[n] for n in layer_names.onnx_nodes_matching(list(ops), [name])}
        if "MatMul" in kinds and not kinds & {"Gather", "GatherBlockQuantized"}:
            keep.append(name)
    return keep


def rank_layers(probe: _Probe) -> tuple[float, list[tuple[str, float]]]:
    """(error with every layer quantised, [(layer, error removed by keeping it float)], best first)."""
    base = probe.error(())
    gains = [(layer, base - probe.error((layer,))) for layer in probe.layers()]
    gains.sort(key=lambda x: -x[1])
    return base, gains


def affordable(ranking: list[tuple[str, float]], sizes: dict[tuple, int], max_bytes: float, max_layers: int, entry: dict):
    """The ranked layers to keep in float, best first, skipping each one whose float weights would take the file
    past the size gate (what it added alone, measured by its probe, on top of what the kept ones added). An
    exclusion keeps a layer and everything under it: in a dynamic-int8 TFLite classifier the ops at BertModel's
    own scope form a layer, `bert`, that ranked first, and keeping it (the whole model) in float made a 34 MB
    file that failed its 8 MB gate. The skipped layers are listed in `entry["skipped_for_size"]`."""
    base, added, taken = sizes.get((), 0), 0, 0
    entry.setdefault("skipped_for_size", [])
    for name, _gain in ranking:
        if taken >= max_layers:
            return
        extra = sizes.get((name,), base) - base
        if base + added + extra > max_bytes:
            entry["skipped_for_size"].append(name)
            continue
        added += extra
        taken += 1
        yield name


def _parity_summary(m: dict) -> dict:
    return {"vs_teacher": m["vs_teacher"], "vs_student_fp32": m["vs_student_fp32"], "size_bytes": m["size_bytes"]}


def recover(ctx: BuildContext, fails: list[GateFailure]) -> BuildContext:
    """Re-quantise the failing formats with their most sensitive layers in float and measure again;
    the context's metrics gain a "fallback" entry (for the gate and the report)."""
    spec = ctx.target.quantize
    task, budget = ctx.teacher.task, ctx.target.budget
    failing = [fmt for fmt in ctx.metrics["formats"] if any(f.format == fmt for f in fails)]
    calib = quantize.calibration_for(ctx)
    max_length = ctx.max_length
    probe_texts = list(ctx.texts.train or ctx.texts.validation)[:PROBE_TEXTS]
    probe_set = calibrate.encode_texts(load_tokenizer(ctx.student.tokenizer_dir), probe_texts, max_length)
    report = {"max_layers": spec.fallback_max_layers, "formats": {}}
    kept: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="edgepack-fallback-", dir=ctx.work_dir) as tmp:
        for fmt in failing:
            probe = _TorchProbe(ctx, probe_set) if fmt == "pte" else _Probe(ctx, fmt, calib, probe_set, Path(tmp))
            base, ranking = rank_layers(probe)
            entry = {
                "before": _parity_summary(ctx.metrics["formats"][fmt]),
                "probe_error_all_int8": base,
                "sensitivity": [{"layer": name, "error_removed": gain} for name, gain in ranking[:12]],
                "kept_float": [],
                # how the kept layers store their weights ([quantize] kept_weights; ONNX only, TFLite and pte keep float)
                "kept_weights": spec.kept_weights if fmt == "onnx" else "float",
                "ranked_on": "torchao-quantised torch head (eager)" if fmt == "pte" else f"{fmt} files",
                "passed": False,
            }
            fmt_ctx = dataclasses.replace(ctx, target=dataclasses.replace(ctx.target, formats=(fmt,)))
            kept[fmt] = []
            for name in affordable(ranking, probe.sizes, budget.max_size_mb * 1e6, spec.fallback_max_layers, entry):
                kept[fmt].append(name)
                arts = quantize.quantize_artifacts(fmt_ctx, calib, {fmt: kept[fmt]}, formats=(fmt,))
                fmt_ctx = dataclasses.replace(fmt_ctx, artifacts=tuple(a for a in fmt_ctx.artifacts if a.format != fmt) + arts)
                trial, _ = evaluate(fmt_ctx, ctx.references, reps=3)
                if not gate_failures(task, budget, trial):
                    entry["passed"] = True
                    break
            entry["kept_float"] = list(kept[fmt])
            report["formats"][fmt] = entry
            # Keep the other formats' artifacts in the context, with this format's new ones.
            others = tuple(a for a in ctx.artifacts if a.format != fmt)
            ctx = dataclasses.replace(ctx, artifacts=others + tuple(a for a in fmt_ctx.artifacts if a.format == fmt))
    ctx = dataclasses.replace(ctx, artifacts=tuple(sorted(ctx.artifacts, key=_artifact_order(ctx))))
    final, _ = evaluate(ctx, ctx.references)
    for fmt, entry in report["formats"].items():
        entry["after"] = _parity_summary(final["formats"][fmt])
    final["fallback"] = report
    return dataclasses.replace(ctx, metrics=final)


def _artifact_order(ctx: BuildContext):
    order = {a.format: i for i, a in enumerate(ctx.fp32_artifacts)}
    return lambda a: order.get(a.format, 0)
