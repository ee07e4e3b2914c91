"""`edgepack inspect`: what is inside a bundle — manifest summary, operators per artifact, how much
of the weight bytes are quantised, and where the bytes go (embeddings vs encoder vs the rest).

Reads the graphs as data (onnx protobuf, TFLite flatbuffer, ExecuTorch program); never runs them. Artifacts whose sha256
differs from the manifest are reported, not parsed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from .errors import BundleFormatError
from .runtime import edgepack_runtime as rt

QUANTISED = {"int8", "uint8", "int4", "uint4", "int16"}
FLOAT = {"float32", "float16", "bfloat16", "float64"}
EMBEDDING_OPS = {"Gather", "GatherBlockQuantized", "GATHER", "EMBEDDING_LOOKUP",
                 "quantized_decomposed::embedding_byte", "quantized_decomposed::embedding_4bit", "aten::embedding"}
DENSE_OPS = {"MatMul", "MatMulInteger", "MatMulNBits", "Gemm", "QLinearMatMul", "DynamicQuantizeMatMul", "FULLY_CONNECTED",
             "BATCH_MATMUL"}
PACKED_4BIT = {"int4", "uint4"}  # two values a byte


def part_of(name: str, consumer_name: str, consumer_op: str) -> str:
    """Attribute a weight to a part of the network, by its name or by the node that uses it."""
    # litert-torch names tensors by module path, which starts with our wrapper "EmbeddingHead".
    text = f"{name} {consumer_name}".lower().replace("embeddinghead", "head")
    if "encoder" in text or "layer." in text:
        return "encoder"
    if "embedding" in text or consumer_op in EMBEDDING_OPS:
        return "embeddings"
    if "pooler" in text or "classifier" in text:
        return "other"
    return "encoder" if consumer_op in DENSE_OPS else "other"


def _weights_summary(weights) -> dict:
    """weights: iterable of (dtype name, element count, bytes, part)."""
    out = {"tensors": 0, "bytes": 0, "params": 0, "quantised_bytes": 0, "quantised_params": 0, "float_bytes": 0,
           "parts": {"embeddings": 0, "encoder": 0, "other": 0}, "dtypes": Counter()}
    for dtype, numel, nbytes, part in weights:
        if numel <= 1:  # scalars: scales, zero points, shape constants
            continue
        out["tensors"] += 1
        out["bytes"] += nbytes
        out["params"] += numel
        out["parts"][part] += nbytes
        out["dtypes"][dtype] += nbytes
        if dtype in QUANTISED:
            out["quantised_bytes"] += nbytes
            out["quantised_params"] += numel
        elif dtype in FLOAT:
            out["float_bytes"] += nbytes
    out["dtypes"] = dict(out["dtypes"].most_common())
    out["quantised_share_params"] = out["quantised_params"] / out["params"] if out["params"] else 0.0
    out["quantised_share_bytes"] = out["quantised_bytes"] / out["bytes"] if out["bytes"] else 0.0
    return out


def onnx_details(path: Path) -> dict:
    import onnx
    from onnx import helper

    graph = onnx.load(str(path), load_external_data=False).graph
    consumer = {}
    for node in graph.node:
        for name in node.input:
            consumer.setdefault(name, (node.name, node.op_type))
    weights = []
    for init in graph.initializer:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(init.data_type)).name if init.data_type != onnx.TensorProto.BFLOAT16 else "bfloat16"
        numel = int(np.prod(init.dims)) if init.dims else 1
        if init.raw_data:
            nbytes = len(init.raw_data)
        elif dtype in PACKED_4BIT:
            nbytes = (numel + 1) // 2
        else:
            nbytes = numel * np.dtype(helper.tensor_dtype_to_np_dtype(init.data_type)).itemsize
        cname, cop = consumer.get(init.name, ("", ""))
        weights.append((dtype, numel, nbytes, part_of(init.name, cname, cop)))
    return {"operators": dict(Counter(n.op_type for n in graph.node).most_common()), "weights": _weights_summary(weights)}


def tflite_details(path: Path) -> dict:
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    op_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    type_names = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    ops, weights = Counter(), []
    # The signatures (one subgraph per sequence bucket, issue #12) share their weight buffers: each
    # buffer is counted once, and the operators are those of one signature (every one has the same).
    counted: set[int] = set()
    for index, sg in enumerate(model.subgraphs):
        consumer = {}
        # Blockwise scales (int4 embedding tables) belong to the part of the tensor they scale.
        owner = {}
        for i, t in enumerate(sg.tensors):
            details = getattr(t.quantization, "details", None) if t.quantization is not None else None
            for ref in (getattr(details, "scales", -1), getattr(details, "zeroPoints", -1)):
                if isinstance(ref, int) and ref >= 0:
                    owner[ref] = i
        for op in sg.operators:
            code = model.operatorCodes[op.opcodeIndex]
            name = op_names.get(max(code.builtinCode, code.deprecatedBuiltinCode), str(code.builtinCode))
            if name == "CUSTOM" and code.customCode:
                name = f"CUSTOM:{code.customCode.decode(errors='replace')}"
            if index == 0:
                ops[name] += 1
            for idx in op.inputs if op.inputs is not None else ():
                consumer.setdefault(int(idx), name)
        for i, t in enumerate(sg.tensors):
            buf = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
            nbytes = len(buf.data) if buf is not None and buf.data is not None else int(getattr(buf, "size", 0) or 0)
            if not nbytes or t.buffer in counted:
                continue  # activations and inputs have no buffer; a shared one is counted once
            counted.add(t.buffer)
            numel = int(np.prod(t.shape)) if t.shape is not None and len(t.shape) else 1
            ref = owner.get(i, i)
            tname = sg.tensors[ref].name
            tname = tname.decode(errors="replace") if isinstance(tname, bytes) else str(tname)
            cop = consumer.get(ref, "")
            weights.append((type_names.get(t.type, str(t.type)), numel, nbytes, part_of(tname, "", cop)))
    return {"operators": dict(ops.most_common()), "weights": _weights_summary(weights)}


# ExecuTorch ScalarType numbers (executorch/exir/scalar_type.py) of the dtypes a .pte here holds
_PTE_DTYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32", 7: "float64",
               11: "bool", 15: "bfloat16"}
XNNPACK_DATA = "xnnpack"  # weights packed for the XNNPACK delegate: bytes known, element type not recorded


def pte_details(path: Path) -> dict:
    """An ExecuTorch program: the kernels it calls outside delegates, one entry per delegate kind,
    and its data. Constant tensors of the program (the quantised lookup tables) carry dtype and shape;
    the XNNPACK delegates' weights live in the program's named data, stored once however many
    delegates use them, as bytes without an element type (dtype "xnnpack", part "encoder", a byte
    counted as one parameter), so the quantised share counts the lookup tables only."""
    from executorch.exir._serialize._program import deserialize_pte_binary

    pte = deserialize_pte_binary(path.read_bytes())
    program = pte.program
    ops, weights, counted = Counter(), [], set()
    for plan in program.execution_plan:
        for chain in plan.chains:
            for ins in chain.instructions:
                args = ins.instr_args
                if hasattr(args, "op_index"):
                    op = plan.operators[args.op_index]
                    ops[op.name] += 1
                    for i in args.args:
                        _pte_constant(plan, program, i, op.name, counted, weights)
                elif hasattr(args, "delegate_index"):
                    ops[f"delegate:{plan.delegates[args.delegate_index].id}"] += 1
    named = pte.named_data
    for key, entry in (named.pte_data.items() if named is not None else ()):
        nbytes = len(named.buffers[entry.buffer_index])
        if key.startswith("scale_"):  # the int8 weights' per-channel scales
            weights.append(("float32", max(nbytes // 4, 2), nbytes, "encoder"))
        else:  # element count unknown: counted as bytes
            weights.append((XNNPACK_DATA, nbytes, nbytes, "encoder"))
    return {"operators": dict(ops.most_common()), "weights": _weights_summary(weights)}


def _pte_constant(plan, program, index: int, consumer: str, counted: set, weights: list) -> None:
    value = plan.values[index].val if 0 <= index < len(plan.values) else None
    buffer = getattr(value, "data_buffer_idx", 0)
    if not buffer or buffer in counted or buffer >= len(program.constant_buffer):
        return  # activations and inputs have no constant buffer; a shared one is counted once
    counted.add(buffer)
    numel = int(np.prod(value.sizes)) if value.sizes else 1
    dtype = _PTE_DTYPES.get(int(value.scalar_type), str(value.scalar_type))
    weights.append((dtype, numel, len(program.constant_buffer[buffer].storage), part_of("", "", consumer)))


def details(path: Path, fmt: str) -> dict:
    """Operators and weights of one model file, per format."""
    if fmt == "onnx":
        return onnx_details(path)
    if fmt == "pte":
        return pte_details(path)
    return tflite_details(path)


def artifact_details(root: Path, art: dict) -> dict:
    path = rt.confined(root, art["path"])
    out = {k: art.get(k) for k in ("path", "format", "precision", "quantization", "buckets")}
    out["signatures"] = [s.get("name") for s in art.get("signatures") or []]
    out["requires"] = list(art.get("requires") or [])
    out["bytes"] = path.stat().st_size if path.is_file() else None
    if not path.is_file():
        out["error"] = "missing"
    elif rt.sha256_file(path) != art.get("sha256", rt.sha256_file(path)):
        out["error"] = "sha256 differs from the manifest; not parsed"
    else:
        out.update(details(path, art["format"]))
    return out


def inspect_bundle(path) -> dict:
    root = Path(path)
    if not root.is_dir():
        raise BundleFormatError(f"{path}: no such bundle directory")
    try:
        m = rt.read_manifest(root)
    except rt.BundleFormatError as exc:
        raise BundleFormatError(str(exc)) from None
    summary = {
        "bundle": str(root),
        "format_version": m.get("format_version"),
        "target": m.get("target"),
        "task": m.get("task"),
        "default_format": m.get("default_format"),
        "output": m.get("output"),
        "output_dim": m.get("output_dim"),
        "pooling": m.get("pooling"),
        "labels": m.get("labels") or [],
        "tokenizer": {k: m["tokenizer"].get(k) for k in ("type", "vocab_size", "max_length", "lowercase")},
        "teacher": m.get("teacher"),
        "student": (m.get("student") or {}).get("description"),
        "golden_cases": len(m.get("golden") or []),
        "budget": m.get("budget"),
        "tools": (m.get("provenance") or {}).get("tools", {}),
        "files": {rel: meta.get("bytes") for rel, meta in m.get("files", {}).items()},
        "total_bytes": sum(int(meta.get("bytes") or 0) for meta in m.get("files", {}).values()),
    }
    try:
        summary["artifacts"] = [artifact_details(root, a) for a in m["artifacts"]]
    except rt.BundleFormatError as exc:
        raise BundleFormatError(str(exc)) from None
    return summary


def _mb(n) -> str:
    return f"{n / 1e6:.2f} MB" if n is not None else "?"


def render(info: dict) -> str:
    """Plain text for people (the --json output is the same data)."""
    lines = [
        f"bundle {info['bundle']}: target {info['target']}, task {info['task']}, format v{info['format_version']}",
        f"  output: {info['output']} [{info['output_dim']}]" + (f", labels {', '.join(info['labels'])}" if info["labels"] else ""),
        f"  tokenizer: {info['tokenizer']['type']}, vocab {info['tokenizer']['vocab_size']}, max_length {info['tokenizer']['max_length']}",
        f"  teacher: {info['teacher']}",
        f"  student: {info['student']}",
        f"  golden cases: {info['golden_cases']}; files: {len(info['files'])}, {_mb(info['total_bytes'])} in all",
    ]
    if info.get("budget"):
        gated = {k: v for k, v in info["budget"].items() if v}
        lines.append("  budget: " + ", ".join(f"{k}={v:g}" for k, v in gated.items()))
    for a in info["artifacts"]:
        seq = f", signatures {' '.join(a['signatures'])}" if a.get("signatures") else ""
        lines.append(f"\n{a['path']} ({a['format']}, {a['precision']}{seq}): {_mb(a['bytes'])}")
        for req in a.get("requires") or ():
            version = req.get("min_version")
            android = f"; Android: {req['android']} >= {version}" if req.get("android") else ""
            lines.append(f"  needs: {req.get('python_package') or req.get('runtime')} >= {version}, for {req.get('feature', '?')}{android}")
        if "error" in a:
            lines.append(f"  {a['error']}")
            continue
        w = a["weights"]
        lines.append(
            f"  weights: {w['params']:,} params in {w['tensors']} tensors, {_mb(w['bytes'])}; quantised: "
            f"{w['quantised_share_params']:.1%} of params, {w['quantised_share_bytes']:.1%} of weight bytes"
            + (f"; XNNPACK's packed weights ({_mb(w['dtypes'][XNNPACK_DATA])}) count as not quantised: the program "
               "does not record their element type" if XNNPACK_DATA in w["dtypes"] else "")
        )
        lines.append("  by part: " + ", ".join(f"{k} {_mb(v)}" for k, v in w["parts"].items()))
        lines.append("  by dtype: " + ", ".join(f"{k} {_mb(v)}" for k, v in w["dtypes"].items()))
        lines.append(("  operators (each signature): " if a.get("signatures") else "  operators: ") + ", ".join(f"{k}×{v}" for k, v in a["operators"].items()))
    return "\n".join(lines) + "\n"
