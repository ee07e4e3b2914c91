"""fp32 export of a wrapped model (modeling.wrap) to the shipped formats.

ONNX: one graph with dynamic batch and sequence length (int64 inputs).
TFLite: litert-torch needs static shapes, so one signature per sequence bucket (`seq32`, `seq64`, ...),
batch 1, int32 inputs, all in ONE flatbuffer: the signatures share the weight buffers, so three
buckets cost about one model's bytes, not three (issue #12; the test_signatures tests measure it).
Both graphs end in the product (`embedding` or `logits`), see modeling.py.
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


def io_spec(fmt: str, task: str, dim: int, buckets=(), token_states_dim: int = 0,
            ) -> tuple[tuple[dict, ...], tuple[dict, ...], tuple[dict, ...]]:
    """(inputs, outputs, signatures) as the manifest records them. TFLite shapes name the bucket
    ("sequence" is the signature's own length); ONNX has no signatures (dynamic shapes).
    `token_states_dim` > 0: the ONNX graph also returns TOKEN_STATES of that width (export_onnx)."""
    if fmt == "onnx":
        shape = ["batch", "sequence"]
        inputs = tuple({"name": n, "dtype": "int64", "shape": shape} for n in ("input_ids", "attention_mask"))
        outputs = ({"name": output_name(task), "dtype": "float32", "shape": ["batch", dim]},)
        if token_states_dim:
            outputs += ({"name": TOKEN_STATES, "dtype": "float32", "shape": ["batch", "sequence", token_states_dim]},)
        return inputs, outputs, ()
    inputs = tuple({"name": n, "dtype": "int32", "shape": [1, "sequence"]} for n in ("input_ids", "attention_mask"))
    outputs = ({"name": output_name(task), "signature_output": SIGNATURE_OUTPUT, "dtype": "float32", "shape": [1, dim]},)
    signatures = tuple({"name": signature_name(seq), "sequence_length": int(seq)} for seq in buckets)
    return inputs, outputs, signatures
