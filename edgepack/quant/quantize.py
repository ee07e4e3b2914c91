"""Quantise the fp32 artifacts into the staging bundle, per the profile's [quantize] section.

mode          onnx (onnxruntime.quantization)               tflite (ai-edge-quantizer)
dynamic-int8  int8 weights (per-channel), dynamic activations  dynamic_wi8_afp32 (+ int8 embedding table)
static-int8   QDQ int8 weights + calibrated int8 activations   static_wi8_ai8 / _ai16, calibrated per bucket
fp16          fp16 weights and compute, fp32 inputs/outputs    fp16 weights (FLOAT_CASTING), fp32 compute
none          the fp32 graph                                   the fp32 graph

`exclude` names layers kept in float (see layer_names.py); the accuracy-aware fallback (fallback.py)
re-runs `quantize_artifacts` with more of them.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from ..context import Artifact, BuildContext
from ..errors import UsageError
from . import calibrate, layer_names, quiet


def shipped_name(art: Artifact) -> str:
    return "model.onnx" if art.format == "onnx" else f"model.seq{art.sequence_length}.tflite"


def onnx_nodes_matching(path: Path, patterns) -> list[str]:
    """Nodes whose name contains a pattern, or whose layer (layer_names.onnx_layer) is named by one."""
    import onnx

    if not patterns:
        return []
    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node if layer_names.matches(layer_names.onnx_layer(n.name), n.name, patterns)]


def quantize_onnx(src: Path, dst: Path, mode: str, per_channel: bool, exclude=(), calibration=None,
                  full_integer: bool = False, activations: str = "int8", block_size: int = 0) -> None:
    if mode == "none":
        shutil.copyfile(src, dst)
        return
    if mode == "fp16":
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        with quiet():
            model = convert_float_to_float16(
                onnx.load(str(src)), keep_io_types=True,
                # Excluded layers stay fp32; Cast nodes are inserted at their edges.
                node_block_list=onnx_nodes_matching(src, exclude) or None,
            )
        onnx.save(model, str(dst))
        return
    if mode == "dynamic-int8" and block_size:
        quantize_onnx_blockwise(src, dst, block_size, onnx_nodes_matching(src, exclude))
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
        calibrate.quantize_onnx_static(src, dst, per_channel, exclude, calibration, full_integer, activations)
        return
    raise UsageError(f"unknown quantisation mode {mode}")


def quantize_onnx_blockwise(src: Path, dst: Path, block_size: int, exclude_nodes: list[str]) -> None:
    """int8 weights per block of `block_size` inputs (com.microsoft MatMulNBits, onnxruntime >= 1.22),
    then the embedding table (Gather) as per-channel dynamic int8 so the file stays small."""
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization import matmul_nbits_quantizer as nbits

    config = nbits.DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=True, accuracy_level=4, bits=8)
    with quiet(), tempfile.TemporaryDirectory() as tmp:
        q = nbits.MatMulNBitsQuantizer(onnx.load(str(src)), algo_config=config, nodes_to_exclude=exclude_nodes)
        q.process()
        mid = Path(tmp) / "blockwise.onnx"
        q.model.save_model_to_file(str(mid), False)
        quantize_dynamic(str(mid), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["Gather"], nodes_to_exclude=exclude_nodes)


def _tflite_recipe(src: Path, mode: str, exclude) -> list:
    from ai_edge_quantizer import algorithm_manager, qtyping, recipe_manager

    rm = recipe_manager.RecipeManager()
    if mode == "dynamic-int8":
        rm.add_dynamic_config(".*", qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=8)
    elif mode == "fp16":
        # ai-edge-quantizer 0.10 has no fp16 recipe, but its FLOAT_CASTING algorithm stores
        # FULLY_CONNECTED/EMBEDDING_LOOKUP weights as fp16 (weight-only; compute stays fp32).
        rm.add_weight_only_config(".*", qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16,
                                  algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING)
    else:
        raise UsageError(f"unknown quantisation mode {mode}")
    calibrate.add_tflite_exclusions(rm, src, exclude, full_integer=True)
    return rm.get_quantization_recipe()


def quantize_tflite(src: Path, dst: Path, mode: str, exclude=(), calibration=None, seq: int | None = None,
                    full_integer: bool = False, activations: str = "int8", block_size: int = 0) -> None:
    if mode == "none":
        shutil.copyfile(src, dst)
        return
    if mode == "static-int8":
        calibrate.quantize_tflite_static(src, dst, exclude, calibration, seq, activations, full_integer)
        return
    from ai_edge_quantizer import quantizer

    recipe = _tflite_recipe(src, mode, exclude)
    with quiet():
        q = quantizer.Quantizer(str(src))
        q.load_quantization_recipe(recipe)
        result = q.quantize(enable_progress_report=False)
        dst.write_bytes(result.quantized_model)


def precision_of(mode: str) -> str:
    return {"dynamic-int8": "int8", "static-int8": "int8", "fp16": "fp16", "none": "fp32"}[mode]


def quantize_artifacts(ctx: BuildContext, calibration=None, extra_exclude: dict | None = None,
                       formats=None) -> tuple[Artifact, ...]:
    """Quantise fp32 artifacts into staging; `extra_exclude` adds layers kept in float, per format."""
    spec = ctx.target.quantize
    shipped = []
    for art in ctx.fp32_artifacts:
        if formats is not None and art.format not in formats:
            continue
        dst = ctx.staging_dir / shipped_name(art)
        exclude = tuple(spec.exclude) + tuple((extra_exclude or {}).get(art.format, ()))
        if art.format == "onnx":
            quantize_onnx(Path(art.path), dst, spec.mode, spec.per_channel, exclude, calibration,
                          spec.full_integer, spec.activations, block_size=spec.block_size)
        else:
            quantize_tflite(Path(art.path), dst, spec.mode, exclude, calibration, art.sequence_length,
                            spec.full_integer, spec.activations)
        shipped.append(dataclasses.replace(art, path=dst.name, precision=precision_of(spec.mode)))
    return tuple(shipped)


def calibration_for(ctx: BuildContext):
    """Token ids the static modes calibrate on (None for the modes that need none)."""
    if ctx.target.quantize.mode != "static-int8":
        return None
    return calibrate.calibration_set(ctx)
