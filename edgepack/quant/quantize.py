"""Quantise the fp32 artifacts into the staging bundle, per the profile's [quantize] section.

mode          onnx (onnxruntime.quantization)               tflite (ai-edge-quantizer)
                                                            (pte: torchao before export, executorch.py)
dynamic-int8  int8 weights (per-channel), dynamic activations  dynamic_wi8_afp32 (+ int8 embedding table)
static-int8   QDQ int8 weights + calibrated int8 activations   static_wi8_ai8 / _ai16, calibrated per bucket
fp16          fp16 weights and compute, fp32 inputs/outputs    fp16 weights (FLOAT_CASTING), fp32 compute
none          the fp32 graph                                   the fp32 graph

`exclude` names layers kept in float (see layer_names.py); the accuracy-aware fallback (fallback.py)
re-runs `quantize_file` with more of them.

`weight_bits = 4` (dynamic-int8, issue #12) stores the matrix-product weights in int4 blocks of
`weight_block_size` inputs: ONNX com.microsoft.MatMulNBits (onnxruntime's MatMulNBitsQuantizer), TFLite
blockwise FULLY_CONNECTED (ai-edge-quantizer's dynamic 4-bit blockwise recipe). With `embedding_bits = 4`
too, every large tensor is int4; position/token-type tables stay int8 (below).

`embedding_bits = 4` (dynamic-int8, issue #11) stores only the word-embedding table in int4 blocks:
ONNX com.microsoft.GatherBlockQuantized, TFLite blockwise EMBEDDING_LOOKUP. Position and token-type
tables stay int8: in 4 bits they cost far more than the big table does (MiniLM, 3 layers, rank-128
factorised embedding, the int4 step alone on random token ids: output cosine to fp32 0.979 with every
Gather in int4, 0.999 with the word table alone).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from ..context import Artifact, BuildContext
from ..errors import TargetError, UsageError
from ..targets import QuantizeSpec
from . import calibrate, int4, layer_names, quiet

# What a device runtime needs for an artifact, beyond what every current interpreter has (recorded per
# artifact in the manifest, checked by the runtime before loading). Each minimum was run here: the
# same int4-embedding model fails to load in onnxruntime 1.19.2 ("GatherBlockQuantized is not a
# registered function/op") and runs in 1.20.0 (the CPU kernel is onnxruntime PR #21630, August 2024);
# an 8-bit MatMulNBits model fails in 1.21.1 ("Only 4b quantization is supported") and runs in 1.22.0.
# LiteRT: the blockwise int4 lookup is commit 4d75421 "lite: 4 bit block embedding lookup" (June 2025),
# first tagged in v1.4.0. Older LiteRT does not refuse the file: ai-edge-litert 1.3.0 runs it without an
# error but ignores the block scales (output cosine 0.51 to fp32; 1.4.0: 0.998), so on a device that
# cannot run this runtime's check, the bundle's golden cases are what catches it.
_ORT = {"runtime": "onnxruntime", "python_package": "onnxruntime", "android": "com.microsoft.onnxruntime:onnxruntime-android"}
_LITERT = {"runtime": "litert", "python_package": "ai-edge-litert", "android": "com.google.ai.edge.litert:litert"}
INT4_EMBEDDINGS_ONNX = {**_ORT, "min_version": "1.20.0", "feature": "com.microsoft.GatherBlockQuantized (int4 word-embedding table)"}
INT4_EMBEDDINGS_TFLITE = {**_LITERT, "min_version": "1.4.0",
                          "feature": "EMBEDDING_LOOKUP with an int4 blockwise table (BlockwiseQuantization)"}
INT8_BLOCKS_ONNX = {**_ORT, "min_version": "1.22.0", "feature": "com.microsoft.MatMulNBits with 8-bit weight blocks"}
# int4 matrices (issue #12), run here on a tiny BERT with int4 FULLY_CONNECTED / MatMulNBits weights
# (blocks of 32), output cosine to the fp32 graph: ai-edge-litert 2.0.2 and 2.0.3 run the file WITHOUT
# an error but wrong (0.81), 2.1.0 and 2.3.0 right (1.000); as with int4 lookups, an older LiteRT does
# not refuse the file, so the runtime refuses the old LiteRT. onnxruntime 1.19.2, 1.20.0 and 1.32.0 run
# 4-bit MatMulNBits right (1.000); 1.19.2 is the oldest that imports here (1.17.3 needs numpy < 2).
INT4_MATRICES_ONNX = {**_ORT, "min_version": "1.19.2", "feature": "com.microsoft.MatMulNBits with 4-bit weight blocks"}
INT4_MATRICES_TFLITE = {**_LITERT, "min_version": "2.1.0",
                        "feature": "FULLY_CONNECTED with int4 blockwise weights (BlockwiseQuantization)"}


def shipped_name(art: Artifact, layout: str = "edgepack", spec: QuantizeSpec | None = None) -> str:
    """One file per format (the TFLite buckets are signatures inside it), relative to the bundle root;
    the transformers.js layout names it by its dtype under onnx/ (edgepack/web)."""
    if layout == "transformers.js":
        from ..web import model_path

        return model_path(spec)
    return f"model.{art.format}"


def onnx_nodes_matching(path: Path, patterns) -> list[str]:
    """Nodes whose name contains a pattern, or whose layer (layer_names.onnx_layer) is named by one."""
    import onnx

    if not patterns:
        return []
    graph = onnx.load(str(path), load_external_data=False).graph
    return layer_names.onnx_nodes_matching((n.name for n in graph.node), patterns)


def int8_weights_for_kept_matmuls(path: Path, nodes: list[str]) -> int:
    """`[quantize] kept_weights = "int8"`: each float MatMul named in `nodes` whose weight is an initializer gets
    it as int8 per output channel (symmetric) behind a DequantizeLinear, in place: it still computes in float on
    float activations, as a kept layer should, but stores 1 byte a weight. Returns how many were rewritten."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    wanted, done, new_nodes = set(nodes), 0, []
    for node in graph.node:
        weight = node.input[1] if node.op_type == "MatMul" and len(node.input) == 2 else ""
        init = inits.get(weight)
        if node.name in wanted and init is not None and init.data_type == onnx.TensorProto.FLOAT and len(init.dims) == 2:
            w = numpy_helper.to_array(init).astype(np.float32)
            scale = np.maximum(np.abs(w).max(axis=0), 1e-12) / 127.0  # one scale per output column (axis 1)
            q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
            base = f"{weight}_kept_int8"
            graph.initializer.extend([numpy_helper.from_array(q, base), numpy_helper.from_array(scale.astype(np.float32), f"{base}_scale"),
                                      numpy_helper.from_array(np.zeros(w.shape[1], np.int8), f"{base}_zero_point")])
            new_nodes.append(helper.make_node("DequantizeLinear", [base, f"{base}_scale", f"{base}_zero_point"],
                                              [f"{base}_dequantized"], name=f"{node.name}_kept_int8_weights", axis=1))
            node.input[1] = f"{base}_dequantized"
            uses[weight] -= 1
            if uses[weight] == 0:
                graph.initializer.remove(init)
            done += 1
    if done:
        # the DequantizeLinear nodes first: their inputs are initializers, and the graph stays topologically sorted
        rest = list(graph.node)
        del graph.node[:]
        graph.node.extend(new_nodes + rest)
        onnx.save(model, str(path))
    return done


def quantize_onnx(src: Path, dst: Path, mode: str, per_channel: bool, exclude=(), calibration=None,
                  full_integer: bool = False, activations: str = "int8", block_size: int = 0,
                  embedding_bits: int = 8, embedding_block_size: int = 32, weight_bits: int = 8,
                  weight_block_size: int = 32, kept_weights: str = "float") -> None:
    if mode == "dynamic-int8" and embedding_bits == 4:
        import tempfile

        # The int4 table first, as GatherBlockQuantized; the int8 pass then runs as without the option:
        # onnxruntime's int8 quantisers do not touch a GatherBlockQuantized node.
        with tempfile.TemporaryDirectory() as tmp:
            mid = Path(tmp) / "embeddings-int4.onnx"
            quantize_onnx_word_embeddings_int4(src, mid, embedding_block_size, exclude)
            quantize_onnx(mid, dst, mode, per_channel, exclude, calibration, full_integer, activations, block_size,
                          weight_bits=weight_bits, weight_block_size=weight_block_size, kept_weights=kept_weights)
        return
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
    if mode == "dynamic-int8" and weight_bits == 4:
        quantize_onnx_blockwise(src, dst, weight_block_size, onnx_nodes_matching(src, exclude), bits=4)
        return
    if mode == "dynamic-int8" and block_size:
        quantize_onnx_blockwise(src, dst, block_size, onnx_nodes_matching(src, exclude))
        return
    if mode == "dynamic-int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        kept = onnx_nodes_matching(src, exclude)
        with quiet():
            quantize_dynamic(
                str(src),
                str(dst),
                weight_type=QuantType.QInt8,
                per_channel=per_channel,
                nodes_to_exclude=kept,
            )
        if kept_weights == "int8" and kept:
            int8_weights_for_kept_matmuls(dst, kept)
        return
    if mode == "static-int8":
        calibrate.quantize_onnx_static(src, dst, per_channel, exclude, calibration, full_integer, activations)
        return
    raise UsageError(f"unknown quantisation mode {mode}")


def quantize_onnx_blockwise(src: Path, dst: Path, block_size: int, exclude_nodes: list[str], bits: int = 8) -> None:
    """int8 (or int4) weights per block of `block_size` inputs (com.microsoft MatMulNBits; 8-bit blocks
    need onnxruntime >= 1.22), then the embedding tables (Gather) as per-channel dynamic int8 so the file
    stays small. A GatherBlockQuantized int4 word table (embedding_bits = 4) is left as it is."""
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization import matmul_nbits_quantizer as nbits

    # accuracy_level 4: int8 compute on the activations, as the dynamic int8 kernels do
    config = nbits.DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=True, accuracy_level=4, bits=bits)
    with quiet(), tempfile.TemporaryDirectory() as tmp:
        q = nbits.MatMulNBitsQuantizer(onnx.load(str(src)), algo_config=config, nodes_to_exclude=exclude_nodes)
        q.process()
        mid = Path(tmp) / "blockwise.onnx"
        q.model.save_model_to_file(str(mid), False)
        quantize_dynamic(str(mid), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["Gather"], nodes_to_exclude=exclude_nodes)


def onnx_word_embedding_gather(graph) -> str | None:
    """Name of the Gather that looks token ids up in the word-embedding table, or None.

    By layer name first (`embeddings.word_embeddings[.lookup]`); otherwise the one Gather of a constant
    table indexed by the `input_ids` input itself. Position and token-type lookups are never it."""
    weights = {i.name for i in graph.initializer}
    tables = [n for n in graph.node if n.op_type == "Gather" and n.input and n.input[0] in weights]
    named = [n for n in tables if layer_names.matches(layer_names.onnx_layer(n.name), "", [layer_names.WORD_EMBEDDINGS])]
    by_input = [n for n in tables if len(n.input) > 1 and n.input[1] == "input_ids"]
    found = named or by_input
    return found[0].name if len(found) == 1 else None


def _check_embedding_width(width: int, block: int, path: Path) -> None:
    # LiteRT's blockwise lookup needs whole blocks; ONNX is held to the same rule so both formats agree.
    if width % block:
        raise TargetError(f"'quantize.embedding_block_size' {block} does not divide the word-embedding width {width} "
                          f"of {path.name}; choose a block size that divides it")


def quantize_onnx_word_embeddings_int4(src: Path, dst: Path, block: int, exclude=()) -> None:
    """The word-embedding Gather as com.microsoft.GatherBlockQuantized: int4, symmetric, one scale per
    `block` values along the embedding dimension (quant axis 1); every other node untouched.

    int4 tensors need opset 21 (and IR 10): the TorchScript export is opset 17, so the graph is converted
    first. (Only bumping the opset number, as the quantiser does by itself, leaves ops whose signature
    changed, e.g. ReduceL2's axes, invalid for onnxruntime.) An excluded word-embedding layer stays float."""
    import onnx
    from onnx import numpy_helper, version_converter
    from onnxruntime.quantization import matmul_nbits_quantizer as nbits

    model = onnx.load(str(src))
    word = onnx_word_embedding_gather(model.graph)
    if word is None:
        raise TargetError(f"'quantize.embedding_bits = 4': found no word-embedding lookup in {src.name}")
    data = next(n for n in model.graph.node if n.name == word).input[0]
    table = next(i for i in model.graph.initializer if i.name == data)
    _check_embedding_width(int(table.dims[-1]), block, src)
    if word in onnx_nodes_matching(src, exclude):
        shutil.copyfile(src, dst)
        return
    if not any(o.domain in ("", "ai.onnx") and o.version >= 21 for o in model.opset_import):
        model = version_converter.convert_version(model, 21)
    others = [n.name for n in model.graph.node if n.op_type == "Gather" and n.name != word]
    config = nbits.DefaultWeightOnlyQuantConfig(
        block_size=block, is_symmetric=True, bits=4, op_types_to_quantize=("Gather",), quant_axes=(("Gather", 1),))
    with quiet():
        q = nbits.MatMulNBitsQuantizer(model, algo_config=config, nodes_to_exclude=others)
        q.process()
    _onto_shared_int4_grid(q.model.model, numpy_helper.to_array(table), block)
    q.model.save_model_to_file(str(dst), False)


def _onto_shared_int4_grid(model, table, block: int) -> None:
    """Rewrite the GatherBlockQuantized table that onnxruntime's quantiser made onto int4.py's grid, LiteRT's (its
    layout kept: int4 values rows x width, float32 scales rows x width / block), so both formats ship one table."""
    from onnx import numpy_helper

    node = next(n for n in model.graph.node if n.op_type == "GatherBlockQuantized")
    inits = {i.name: i for i in model.graph.initializer}
    data, scales_init = inits[node.input[0]], inits[node.input[2]]
    q, scales = int4.blocks(table, block)
    if list(data.dims) != list(q.shape) or list(scales_init.dims) != list(scales.shape):
        raise RuntimeError(f"unexpected GatherBlockQuantized layout: {list(data.dims)}, scales {list(scales_init.dims)}")
    data.raw_data = int4.pack(q)
    scales_init.CopyFrom(numpy_helper.from_array(scales, scales_init.name))


def tflite_word_embedding_lookup(path: Path) -> tuple[list[str], int] | None:
    """([quantiser scope per signature], table width) of the EMBEDDING_LOOKUP that reads the
    word-embedding table, or None: by layer name (`embeddings.word_embeddings[.lookup]`), else the
    graph's only EMBEDDING_LOOKUP per signature. Every signature's op is named, so the shared table
    gets one recipe and stays one buffer."""
    lookups = [op for op in calibrate.tflite_ops(path) if op.name == "EMBEDDING_LOOKUP"]
    named = [op for op in lookups if layer_names.matches(op.layer, "", [layer_names.WORD_EMBEDDINGS])]
    found = named or lookups
    layers = {op.layer for op in found}
    if not found or len(layers) != 1 or len({op.weight_width for op in found}) != 1:
        return None
    return [op.scope for op in found], int(found[0].weight_width)


def _tflite_word_embedding_int4(rm, src: Path, block: int) -> None:
    """int4 blocks for the word-embedding lookup only. ai-edge-quantizer 0.10 refuses a 4-bit
    weight-only EMBEDDING_LOOKUP but takes it as a dynamic config; LiteRT dequantises the looked-up
    rows (the op has no activations to quantise)."""
    import re

    from ai_edge_quantizer import qtyping

    found = tflite_word_embedding_lookup(src)
    if found is None:
        raise TargetError(f"'quantize.embedding_bits = 4': found no word-embedding lookup in {src.name}")
    scopes, width = found
    _check_embedding_width(width, block, src)
    rm.add_dynamic_config("^(?:" + "|".join(re.escape(s) for s in scopes) + ")$", qtyping.TFLOperationName.EMBEDDING_LOOKUP,
                          num_bits=4, granularity=qtyping.QuantGranularity(f"BLOCKWISE_{block}"))


def _tflite_recipe(src: Path, mode: str, exclude, embedding_bits: int = 8, embedding_block_size: int = 32,
                   weight_bits: int = 8, weight_block_size: int = 32) -> list:
    from ai_edge_quantizer import algorithm_manager, qtyping, recipe_manager

    rm = recipe_manager.RecipeManager()
    if mode == "dynamic-int8":
        rm.add_dynamic_config(".*", qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=8)
        if weight_bits == 4:  # every signature's matrices: the regex names no single subgraph
            rm.add_dynamic_config(".*", qtyping.TFLOperationName.FULLY_CONNECTED, num_bits=4,
                                  granularity=qtyping.QuantGranularity(f"BLOCKWISE_{weight_block_size}"))
        if embedding_bits == 4:  # a later, narrower entry wins for that one op; exclusions below win over both
            _tflite_word_embedding_int4(rm, src, embedding_block_size)
    elif mode == "fp16":
        # ai-edge-quantizer 0.10 has no fp16 recipe, but its FLOAT_CASTING algorithm stores
        # FULLY_CONNECTED/EMBEDDING_LOOKUP weights as fp16 (weight-only; compute stays fp32).
        rm.add_weight_only_config(".*", qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16,
                                  algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING)
    else:
        raise UsageError(f"unknown quantisation mode {mode}")
    calibrate.add_tflite_exclusions(rm, src, exclude, full_integer=True)
    return rm.get_quantization_recipe()


def quantize_tflite(src: Path, dst: Path, mode: str, exclude=(), calibration=None, buckets=(),
                    full_integer: bool = False, activations: str = "int8", block_size: int = 0,
                    embedding_bits: int = 8, embedding_block_size: int = 32, weight_bits: int = 8,
                    weight_block_size: int = 32) -> None:
    if mode == "none":
        shutil.copyfile(src, dst)
        return
    if mode == "static-int8":
        calibrate.quantize_tflite_static(src, dst, exclude, calibration, buckets, activations, full_integer)
        return
    from ai_edge_quantizer import quantizer

    recipe = _tflite_recipe(src, mode, exclude, embedding_bits, embedding_block_size, weight_bits, weight_block_size)
    with quiet():
        q = quantizer.Quantizer(str(src))
        q.load_quantization_recipe(recipe)
        result = q.quantize(enable_progress_report=False)
        dst.write_bytes(result.quantized_model)


def compact_tflite_names(path: Path) -> None:
    """Shorten the shipped TFLite file's tensor names in place: litert-torch names each tensor by its full
    module path, and fused tensors by several joined with ';' ("edgepack.modeling.EmbeddingHead/transformers.
    models.bert.modeling_bert.BertModel_model/..."), 300+ bytes a tensor, and every signature (issue #12)
    repeats them: 0.29-0.36 MB of a 7.9-8.3 MB student file, which put a classifier over android-arm64's
    8 MB. Runtimes address a signature's inputs and outputs through its signature def, never by tensor name,
    so each path part is reduced to its last dotted component and each fused name kept once
    ("EmbeddingHead/.BertModel_model/.BertEncoder_encoder/.BertLayer_2/..."): still readable by `inspect`,
    `layer_names.tflite_layer` and a model viewer. Runs after quantisation, whose recipes match the full names."""
    from ai_edge_litert.tools import flatbuffer_utils as fb

    model = fb.read_model(str(path))
    for sg in model.subgraphs:
        for t in sg.tensors:
            if t.name:
                name = t.name.decode("utf-8", "replace") if isinstance(t.name, bytes) else str(t.name)
                short = ["/".join("." + seg.rsplit(".", 1)[-1] if "." in seg else seg for seg in fused.split("/"))
                         for fused in name.split(";;")]
                # Each fused name once, the last one last: layer_names.tflite_layer reads the op's module
                # from the last, and a segment that was a dotted module path keeps its leading "."
                t.name = ";;".join(list(dict.fromkeys(reversed(short)))[::-1]).encode()
    tmp = path.with_name(path.name + ".names")
    fb.write_model(model, str(tmp))
    tmp.replace(path)


def precision_of(spec: QuantizeSpec | str) -> str:
    """The artifact's precision label: "int8", "fp16", "fp32", "int8 (embeddings int4)",
    "int4 matrices (embeddings int8)" or "int4" (matrices and word embeddings)."""
    mode = spec if isinstance(spec, str) else spec.mode
    label = {"dynamic-int8": "int8", "static-int8": "int8", "fp16": "fp16", "none": "fp32"}[mode]
    if isinstance(spec, str) or spec.mode != "dynamic-int8":
        return label
    if spec.weight_bits == 4:
        return "int4" if spec.embedding_bits == 4 else "int4 matrices (embeddings int8)"
    return label + (" (embeddings int4)" if spec.embedding_bits == 4 else "")


def runtime_requirements(fmt: str, spec: QuantizeSpec) -> list[dict]:
    """What a device runtime must have to run this format's artifact, beyond a current interpreter."""
    if fmt == "pte":  # every .pte: its XNNPACK and quantized kernels come with the runtime's version
        from .executorch import EXECUTORCH

        return [dict(EXECUTORCH)]
    out = []
    if spec.mode == "dynamic-int8" and spec.embedding_bits == 4:
        out.append(dict(INT4_EMBEDDINGS_ONNX if fmt == "onnx" else INT4_EMBEDDINGS_TFLITE))
    if spec.mode == "dynamic-int8" and spec.block_size and fmt == "onnx":
        out.append(dict(INT8_BLOCKS_ONNX))
    if spec.mode == "dynamic-int8" and spec.weight_bits == 4:
        out.append(dict(INT4_MATRICES_ONNX if fmt == "onnx" else INT4_MATRICES_TFLITE))
    return out


def quantize_file(src: Path, dst: Path, fmt: str, spec: QuantizeSpec, exclude=(), calibration=None,
                  buckets=(), model=None, max_length: int = 0) -> None:
    """One fp32 artifact into `dst` per the profile's [quantize]; `exclude` replaces spec.exclude
    (the fallback passes the profile's plus its own); `buckets`: the TFLite file's signatures (static
    int8 calibrates each on inputs of its own length). pte: a lowered program cannot be re-quantised,
    so `model()` gives the fp32 torch head, quantised and exported again up to `max_length` tokens."""
    if fmt == "pte":
        if spec.mode == "none":
            shutil.copyfile(src, dst)
            return
        from ..export import export_pte
        from .executorch import quantize_head

        export_pte(quantize_head(model(), spec, exclude), dst, max_length)
        return
    if fmt == "onnx":
        quantize_onnx(src, dst, spec.mode, spec.per_channel, exclude, calibration, spec.full_integer, spec.activations,
                      block_size=spec.block_size, embedding_bits=spec.embedding_bits,
                      embedding_block_size=spec.embedding_block_size, weight_bits=spec.weight_bits,
                      weight_block_size=spec.weight_block_size, kept_weights=spec.kept_weights)
    else:
        quantize_tflite(src, dst, spec.mode, exclude, calibration, buckets, spec.full_integer, spec.activations,
                        embedding_bits=spec.embedding_bits, embedding_block_size=spec.embedding_block_size,
                        weight_bits=spec.weight_bits, weight_block_size=spec.weight_block_size)
        compact_tflite_names(dst)


def quantize_artifacts(ctx: BuildContext, calibration=None, extra_exclude: dict | None = None,
                       formats=None) -> tuple[Artifact, ...]:
    """Quantise fp32 artifacts into staging; `extra_exclude` adds layers kept in float, per format."""
    spec = ctx.target.quantize
    shipped = []

    def head():  # ExecuTorch quantises the torch module (executorch.py)
        from ..export import shipped_head

        return shipped_head(ctx.student.dir, ctx.teacher, max(ctx.target.sequence_buckets), ctx.options.allow_pickle)

    for art in ctx.fp32_artifacts:
        if formats is not None and art.format not in formats:
            continue
        rel = shipped_name(art, ctx.target.layout, spec)
        dst = ctx.staging_dir / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        exclude = tuple(spec.exclude) + tuple((extra_exclude or {}).get(art.format, ()))
        quantize_file(Path(art.path), dst, art.format, spec, exclude, calibration, art.buckets, head, ctx.max_length)
        shipped.append(dataclasses.replace(art, path=rel, precision=precision_of(spec),
                                           requires=tuple(runtime_requirements(art.format, spec))))
    return tuple(shipped)


def calibration_for(ctx: BuildContext):
    """Token ids the static modes calibrate on (None for the modes that need none)."""
    if ctx.target.quantize.mode != "static-int8":
        return None
    return calibrate.calibration_set(ctx)
