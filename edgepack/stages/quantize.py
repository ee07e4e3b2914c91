"""Quantise the fp32 artifacts into the staging bundle, per the profile's [quantize] section.

onnx:   onnxruntime.quantization (dynamic int8, per-channel weights by default)
tflite: ai-edge-quantizer recipes (dynamic-range int8 weights, float activations)
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from ..context import Artifact, BuildContext
from ..errors import UsageError
from .export import quiet


def shipped_name(art: Artifact) -> str:
    return "model.onnx" if art.format == "onnx" else f"model.seq{art.sequence_length}.tflite"


def onnx_nodes_matching(path: Path, patterns) -> list[str]:
    import onnx

    if not patterns:
        return []
    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node if any(p in n.name for p in patterns)]


def quantize_onnx(src: Path, dst: Path, mode: str, per_channel: bool, exclude=(), calibration=None) -> None:
    if mode == "none":
        shutil.copyfile(src, dst)
        return
    if mode == "fp16":
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
        onnx.save(model, str(dst))
        return
    if mode == "dynamic-int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with quiet():
            quantize_dynamic(
                str(src),
                str(dst),
                weight_type=QuantType.QInt8,
                per_channel=per_channel,
                nodes_to_exclude=onnx_nodes_matching(src, exclude),
            )
        return
    if mode == "static-int8":
        from . import calibrate

        calibrate.quantize_onnx_static(src, dst, per_channel, exclude, calibration)
        return
    raise UsageError(f"unknown quantisation mode {mode}")


def quantize_tflite(src: Path, dst: Path, mode: str, exclude=(), calibration=None) -> None:
    if mode == "none":
        shutil.copyfile(src, dst)
        return
    from ai_edge_quantizer import quantizer, recipe

    if mode == "dynamic-int8":
        chosen = recipe.dynamic_wi8_afp32()
    elif mode == "fp16":
        chosen = recipe.weight_only_wf16_afp32() if hasattr(recipe, "weight_only_wf16_afp32") else None
        if chosen is None:
            raise UsageError("this ai-edge-quantizer has no fp16 recipe")
    elif mode == "static-int8":
        from . import calibrate

        calibrate.quantize_tflite_static(src, dst, exclude, calibration)
        return
    else:
        raise UsageError(f"unknown quantisation mode {mode}")
    with quiet():
        q = quantizer.Quantizer(str(src))
        q.load_quantization_recipe(chosen)
        result = q.quantize()
        dst.write_bytes(result.quantized_model)


def precision_of(mode: str) -> str:
    return {"dynamic-int8": "int8", "static-int8": "int8", "fp16": "fp16", "none": "fp32"}[mode]


def run(ctx: BuildContext) -> BuildContext:
    spec = ctx.target.quantize
    shipped = []
    for art in ctx.fp32_artifacts:
        dst = ctx.staging_dir / shipped_name(art)
        if art.format == "onnx":
            quantize_onnx(Path(art.path), dst, spec.mode, spec.per_channel, spec.exclude, ctx.texts)
        else:
            quantize_tflite(Path(art.path), dst, spec.mode, spec.exclude, ctx.texts)
        shipped.append(dataclasses.replace(art, path=dst.name, precision=precision_of(spec.mode)))
    return dataclasses.replace(ctx, artifacts=tuple(shipped))
