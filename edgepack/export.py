"""fp32 export of a wrapped model (modeling.wrap) to the shipped formats.

ONNX: one graph with dynamic batch and sequence length (int64 inputs).
TFLite: litert-torch needs static shapes, so one signature per sequence bucket (`seq32`, `seq64`, ...),
batch 1, int32 inputs, all in ONE flatbuffer: the signatures share the weight buffers, so three
buckets cost about one model's bytes, not three (issue #12; the test_signatures tests measure it).
ExecuTorch (issue #14): one program, one method `forward` with a dynamic sequence length (1..the
largest bucket), batch 1, int64 inputs, lowered to XNNPACK. Measured against one method per bucket
(seq32/seq64/seq128 in one .pte, which also stores the weights once): the same size within 4%, a
third less export time, and a 10-token text runs 10 positions instead of 32 (README "ExecuTorch").
All graphs end in the product (`embedding` or `logits`), see modeling.py.
"""

from __future__ import annotations

import os
from pathlib import Path

from .quant import quiet

# Keep TensorFlow-style C++ logging quiet when LiteRT is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def output_name(task: str) -> str:
    return "logits" if task == "text-classification" else "embedding"


# The token states transformers.js's feature-extraction pipeline pools (issue #14, layout "transformers.js").
TOKEN_STATES = "last_hidden_state"


def export_onnx(head, path: Path, task: str, sample_len: int = 16, token_states: bool = False) -> None:
    """`token_states`: `head` is modeling.with_token_states(...); the graph also returns TOKEN_STATES,
    after the pooled output (runtimes that read the first output are unaffected)."""
    import torch  # here, not at import: quant/ reads signature_name without loading torch

    ids = torch.ones(2, sample_len, dtype=torch.long)
    mask = torch.ones(2, sample_len, dtype=torch.long)
    out = output_name(task)
    outputs = [out, TOKEN_STATES] if token_states else [out]
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}, out: {0: "batch"}}
    if token_states:
        axes[TOKEN_STATES] = {0: "batch", 1: "sequence"}
    with quiet(), torch.no_grad():
        torch.onnx.export(
            head,
            (ids, mask),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,  # the TorchScript exporter gives a plain graph that ORT's quantiser handles
        )


def signature_name(seq: int) -> str:
    """The TFLite signature of one sequence bucket (the Python runtime and the Java core call it by name)."""
    return f"seq{seq}"


# litert-torch names a signature's inputs after the forward's keyword arguments and its one output so.
SIGNATURE_OUTPUT = "output_0"


def export_tflite(head, path: Path, buckets) -> None:
    """One .tflite with one signature per bucket; litert-torch stores each parameter once."""
    import litert_torch
    import torch

    converter = None
    for seq in buckets:
        sample = {
            "input_ids": torch.ones(1, seq, dtype=torch.int32),
            "attention_mask": torch.ones(1, seq, dtype=torch.int32),
        }
        add = litert_torch.signature if converter is None else converter.signature
        converter = add(signature_name(seq), head, sample_kwargs=sample)
    with quiet():
        converter.convert().export(str(path))


# ExecuTorch: the one method of the program (dynamic sequence length, so no method per bucket).
PTE_METHOD = "forward"


def shipped_head(student_dir: Path, teacher, max_positions: int, allow_pickle: bool = False):
    """The fp32 torch module every format is exported from: the student with the teacher's head
    (pooling, Dense, normalisation or logits), position rows past `max_positions` dropped."""
    from .modeling import load_hf_model, wrap
    from .student.layers import truncate_positions

    model = load_hf_model(student_dir, teacher.task, allow_pickle)
    # The bundle never runs more tokens than its largest bucket (the manifest's max_length), so the
    # position rows past it are dead weight: 384 of a classifier's 512, 0.16 MB of a TFLite file whose
    # signatures look positions up in the table (issue #12).
    truncate_positions(model, teacher.family, max_positions)
    return wrap(model, teacher.task, teacher.family, teacher.pooling, teacher.normalize, teacher.dense)


def export_pte(head, path: Path, max_length: int) -> None:
    """`head` (fp32, or already quantised by quant/executorch.py) as an ExecuTorch program for XNNPACK:
    torch.export with the sequence length dynamic in 1..max_length, to_edge_transform_and_lower with
    the XNNPACK partitioner, then the .pte. The quantised ops XNNPACK does not take (the int8/int4
    embedding lookups) become ExecuTorch's quantized kernels through do_quant_fusion_and_const_prop."""
    import torch

    with quiet():  # executorch imports torchao, which logs each optional GPU kernel it cannot load
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import ExecutorchBackendConfig, to_edge_transform_and_lower

    # The trace is taken at a length other than 1: a sample of length 1 would specialise the graph to it.
    sample = min(max_length, 8)
    ids = torch.ones(1, sample, dtype=torch.long)
    seq = torch.export.Dim("sequence", min=1, max=max_length)
    with quiet(), torch.no_grad():
        program = torch.export.export(head, (ids, torch.ones_like(ids)), dynamic_shapes=({1: seq}, {1: seq}), strict=False)
        lowered = to_edge_transform_and_lower({PTE_METHOD: program}, partitioner=[XnnpackPartitioner()])
        et = lowered.to_executorch(ExecutorchBackendConfig(do_quant_fusion_and_const_prop=True))
    path.write_bytes(et.buffer)


def io_spec(fmt: str, task: str, dim: int, buckets=(), token_states_dim: int = 0,
            ) -> tuple[tuple[dict, ...], tuple[dict, ...], tuple[dict, ...]]:
    """(inputs, outputs, signatures) as the manifest records them. TFLite shapes name the bucket
    ("sequence" is the signature's own length); ONNX and ExecuTorch have none (dynamic length).
    `token_states_dim` > 0: the ONNX graph also returns TOKEN_STATES of that width (export_onnx)."""
    if fmt == "onnx":
        shape = ["batch", "sequence"]
        inputs = tuple({"name": n, "dtype": "int64", "shape": shape} for n in ("input_ids", "attention_mask"))
        outputs = ({"name": output_name(task), "dtype": "float32", "shape": ["batch", dim]},)
        if token_states_dim:
            outputs += ({"name": TOKEN_STATES, "dtype": "float32", "shape": ["batch", "sequence", token_states_dim]},)
        return inputs, outputs, ()
    if fmt == "pte":  # one method, batch 1, any length up to the bundle's max_length
        inputs = tuple({"name": n, "dtype": "int64", "shape": [1, "sequence"]} for n in ("input_ids", "attention_mask"))
        outputs = ({"name": output_name(task), "method": PTE_METHOD, "dtype": "float32", "shape": [1, dim]},)
        return inputs, outputs, ()
    inputs = tuple({"name": n, "dtype": "int32", "shape": [1, "sequence"]} for n in ("input_ids", "attention_mask"))
    outputs = ({"name": output_name(task), "signature_output": SIGNATURE_OUTPUT, "dtype": "float32", "shape": [1, dim]},)
    signatures = tuple({"name": signature_name(seq), "sequence_length": int(seq)} for seq in buckets)
    return inputs, outputs, signatures
