"""Static int8: calibrate activation ranges on the build's training texts, then quantise.

onnx:   onnxruntime.quantization.quantize_static, QDQ format, int8 weights and activations. Only the
        matrix products and the embedding lookups are quantised by default; LayerNorm, GELU (Erf),
        Softmax and the residual adds stay float, because int8 ranges cannot hold their outliers
        (optimum#151). Ranges are cached as JSON beside the fp32 graph so the accuracy-aware fallback
        re-quantises with more layers in float without re-calibrating.
tflite: ai-edge-quantizer static recipes (int8 or int16 activations), calibrated per sequence bucket
        with inputs padded exactly as the runtime pads them. Same default exclusions as ONNX.

`full_integer` (NPU/DSP profiles) quantises every op the quantiser supports: NPUs reject float ops.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..export import signature_name
from ..tokenizer import load_tokenizer
from . import layer_names, quiet

# Ops with weights or large matrix products: the part of the graph where int8 pays off.
ONNX_QUANT_OPS = ("MatMul", "Gemm", "Gather")
TFLITE_QUANT_OPS = ("FULLY_CONNECTED", "BATCH_MATMUL")


@dataclass(frozen=True)
class Calibration:
    """Token ids of the calibration texts (already truncated at max_length), batch of one each."""

    ids: tuple[tuple[int, ...], ...]
    max_length: int
    pad_id: int = 0

    @property
    def key(self) -> str:
        h = hashlib.sha256(json.dumps([self.max_length, self.pad_id, self.ids]).encode())
        return h.hexdigest()[:20]


def calibration_set(ctx, limit: int | None = None) -> Calibration:
    """Calibration texts come from the training split: validation stays unseen for the gates."""
    limit = limit or ctx.target.quantize.calibration_size
    texts = [t for t in (ctx.texts.train or ctx.texts.validation) if t][:limit]
    if not texts:
        raise UsageError("static-int8 needs calibration text; pass --data with a few sentences")
    max_length = ctx.max_length
    # the exact tokenizer the bundle ships
    return encode_texts(load_tokenizer(ctx.student.tokenizer_dir), texts, max_length)


def encode_texts(tokenizer, texts, max_length: int) -> Calibration:
    tokenizer.enable_truncation(max_length)
    tokenizer.no_padding()
    pad_id = tokenizer.token_to_id("[PAD]") or 0
    ids = tuple(tuple(e.ids) for e in tokenizer.encode_batch(list(texts)) if e.ids)
    return Calibration(ids=ids, max_length=max_length, pad_id=pad_id)


def onnx_feeds(calib: Calibration) -> list[dict]:
    """One text per run at its own length: padding would put junk activations into the ranges."""
    return [
        {"input_ids": np.asarray([ids], dtype=np.int64), "attention_mask": np.ones((1, len(ids)), dtype=np.int64)}
        for ids in calib.ids
    ]


def tflite_feeds(calib: Calibration, seq: int) -> list[dict]:
    """Batch 1 padded to the bucket with mask 0, exactly what the runtime feeds LiteRT."""
    feeds = []
    for ids in calib.ids:
        n = min(len(ids), seq)
        x = np.full((1, seq), calib.pad_id, dtype=np.int32)
        m = np.zeros((1, seq), dtype=np.int32)
        x[0, :n] = ids[:n]
        m[0, :n] = 1
        feeds.append({"input_ids": x, "attention_mask": m})
    return feeds


# -- ONNX --------------------------------------------------------------------------------------------

def onnx_quantizable(path: Path, full_integer: bool = False, weights_only: bool = False) -> dict[str, list[str]]:
    """Layer name -> names of the nodes static quantisation would touch in that layer. `weights_only`: the nodes
    dynamic int8 touches, those with a constant weight (onnxruntime leaves a product of two activations float)."""
    import onnx

    return _quantizable(onnx.load(str(path), load_external_data=False).graph, full_integer, weights_only)


def _quantizable(graph, full_integer: bool, weights_only: bool = False) -> dict[str, list[str]]:
    weights = {i.name for i in graph.initializer}
    out: dict[str, list[str]] = {}
    for node in graph.node:
        if node.op_type in ("Constant", "Shape", "Identity"):
            continue
        if not full_integer:
            if node.op_type not in ONNX_QUANT_OPS:
                continue
            # Gather on shapes (int64 index arithmetic) is not a float op; only embedding lookups count.
            if node.op_type == "Gather" and (not node.input or node.input[0] not in weights):
                continue
            if weights_only and not any(i in weights for i in node.input):
                continue
        out.setdefault(layer_names.onnx_layer(node.name), []).append(node.name)
    return out


def onnx_excluded_nodes(path: Path, exclude, full_integer: bool = False) -> list[str]:
    import onnx

    # Which nodes the list names is decided over the whole graph (its layer names included), then
    # narrowed to the ones quantisation would touch.
    graph = onnx.load(str(path), load_external_data=False).graph
    named = set(layer_names.onnx_nodes_matching((n.name for n in graph.node), exclude))
    return [n for names in _quantizable(graph, full_integer).values() for n in names if n in named]


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a list of feeds."""

    def __init__(self, feeds):
        self._it = iter(feeds)

    def get_next(self):
        return next(self._it, None)


def quantize_onnx_static(src: Path, dst: Path, per_channel: bool, exclude, calibration: Calibration,
                         full_integer: bool = False, activations: str = "int8") -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if calibration is None:
        raise UsageError("static-int8 needs calibration data")
    # u8 activations x s8 weights: the pairing ORT's CPU kernels fuse into QLinearMatMul. With s8
    # activations the QDQ graph runs DequantizeLinear + float MatMul, slower than fp32 (measured:
    # MiniLM @128 tokens, 1 thread, x86: 8.5 ms u8s8 vs 111 ms s8s8 vs 50 ms fp32).
    act = {"int8": QuantType.QUInt8, "int16": QuantType.QInt16}[activations]
    op_types = None if full_integer else list(ONNX_QUANT_OPS)
    # The JSON range cache lives beside the (content-addressed) fp32 graph: same graph, same texts,
    # same op set -> same ranges, so fallback re-quantisations skip calibration.
    cache = Path(src).parent / f"calib-{calibration.key}-{'full' if full_integer else 'mm'}-{activations}.json"
    with quiet():
        quantize_static(
            str(src),
            str(dst),
            _Reader(onnx_feeds(calibration)),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=op_types,
            per_channel=per_channel,
            activation_type=act,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=onnx_excluded_nodes(src, exclude, full_integer),
            calibrate_method=CalibrationMethod.MinMax,
            calibration_cache_path=str(cache),
            extra_options={"ActivationSymmetric": activations == "int16", "WeightSymmetric": True},
        )


# -- TFLite ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TFLiteOp:
    name: str  # FULLY_CONNECTED, EMBEDDING_LOOKUP, ...
    layer: str  # layer_names.tflite_layer of its first output
    scope: str  # what ai-edge-quantizer's recipe regexes match (its output tensor names)
    weight_width: int | None  # last dimension of its second input, when that is a constant (a weight)


def tflite_ops(path: Path) -> list[TFLiteOp]:
    """Every op of every subgraph (one per signature, issue #12), in order. A recipe entry must name
    the op in every signature: the signatures share one weight buffer, and an op quantised in one
    signature but not the other gets its weights copied (the file grows by that tensor)."""
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as fb

    model = fb.read_model(str(path))
    out = []
    for sg in model.subgraphs:
        names = [fb.get_tensor_name(t) for t in sg.tensors]
        for op in sg.operators:
            op_name = fb.TFL_OP_CODE_TO_NAME.get(model.operatorCodes[op.opcodeIndex].builtinCode)
            outs = [names[i] for i in op.outputs if i >= 0]
            scope = ";".join(n for n in outs if n) + (";" if any(outs) else "")
            width = None
            if len(op.inputs) > 1 and op.inputs[1] >= 0:
                w = sg.tensors[op.inputs[1]]
                if model.buffers[w.buffer].data is not None and len(w.shape):
                    width = int(w.shape[-1])
            out.append(TFLiteOp(str(op_name.value if hasattr(op_name, "value") else op_name),
                                layer_names.tflite_layer(outs[0]) if outs else "", scope, width))
    return out


def tflite_quantizable(path: Path, full_integer: bool = False, weights_only: bool = False) -> dict[str, list[str]]:
    """Layer name -> the scopes of its ops that static quantisation would touch; `weights_only`: those dynamic
    int8 touches, the ops with a constant weight (an attention's BATCH_MATMUL of two activations stays float)."""
    out: dict[str, list[str]] = {}
    quantized = TFLITE_QUANT_OPS + ("EMBEDDING_LOOKUP",)
    for op in tflite_ops(path):
        if weights_only and (op.name not in quantized or op.weight_width is None):
            continue
        if full_integer or op.name in quantized:
            out.setdefault(op.layer, []).append(op.scope)
    return out


def add_tflite_exclusions(rm, path: Path, exclude, full_integer: bool) -> None:
    """Append a no-quantise entry for the excluded layers' ops (later recipe entries win)."""
    from ai_edge_quantizer import algorithm_manager, qtyping

    scopes = [s for layer, ss in tflite_quantizable(path, full_integer).items()
              if layer_names.matches(layer, "", exclude) for s in ss]
    if scopes:
        # An anchored alternation of exact op scopes touches nothing else.
        regex = "^(?:" + "|".join(re.escape(s) for s in scopes) + ")$"
        rm.add_quantization_config(regex, qtyping.TFLOperationName.ALL_SUPPORTED, None,
                                   algorithm_manager.AlgorithmName.NO_QUANTIZE)


def tflite_recipe(path: Path, exclude, activations: str, full_integer: bool) -> list:
    from ai_edge_quantizer import qtyping, recipe_manager

    bits = {"int8": 8, "int16": 16}[activations]
    rm = recipe_manager.RecipeManager()
    ops = [qtyping.TFLOperationName.ALL_SUPPORTED] if full_integer else [qtyping.TFLOperationName(o) for o in TFLITE_QUANT_OPS]
    for op in ops:
        rm.add_static_config(".*", op, activation_num_bits=bits, weight_num_bits=8)
    # LiteRT has no static int8 embedding lookup; int8 weights with the hybrid kernel keep the
    # (largest) table small without a float copy at run time.
    rm.add_dynamic_config(".*", qtyping.TFLOperationName.EMBEDDING_LOOKUP, num_bits=8)
    add_tflite_exclusions(rm, path, exclude, full_integer)
    return rm.get_quantization_recipe()


_TFLITE_QSVS: dict[tuple, dict] = {}  # (fp32 path, calibration key, activations, full) -> ranges


def quantize_tflite_static(src: Path, dst: Path, exclude, calibration: Calibration, buckets,
                           activations: str = "int8", full_integer: bool = False) -> None:
    from ai_edge_quantizer import quantizer

    if calibration is None:
        raise UsageError("static-int8 needs calibration data")
    key = (str(src), calibration.key, activations, full_integer)
    with quiet():
        if key not in _TFLITE_QSVS:
            # Calibrate with nothing excluded so every later exclusion set finds its ranges.
            full = quantizer.Quantizer(str(src))
            full.load_quantization_recipe(tflite_recipe(src, (), activations, full_integer))
            # Each bucket's signature on inputs of its own length; the shared weights get one recipe.
            feeds = {signature_name(seq): tflite_feeds(calibration, seq) for seq in buckets}
            _TFLITE_QSVS[key] = full.calibrate(feeds, num_threads=1)
        q = quantizer.Quantizer(str(src))
        q.load_quantization_recipe(tflite_recipe(src, exclude, activations, full_integer))
        result = q.quantize(_TFLITE_QSVS[key], enable_progress_report=False)
        Path(dst).write_bytes(result.quantized_model)
