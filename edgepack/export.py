"""fp32 export of a wrapped model (modeling.wrap) to the shipped formats.

ONNX: one graph with dynamic batch and sequence length (int64 inputs).
TFLite: litert-torch needs static shapes, so one graph per sequence bucket, batch 1, int32 inputs.
Both graphs end in the product (`embedding` or `logits`), see modeling.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .quant import quiet

# Keep TensorFlow-style C++ logging quiet when LiteRT is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def output_name(task: str) -> str:
    return "logits" if task == "text-classification" else "embedding"


def export_onnx(head: torch.nn.Module, path: Path, task: str, sample_len: int = 16) -> None:
    ids = torch.ones(2, sample_len, dtype=torch.long)
    mask = torch.ones(2, sample_len, dtype=torch.long)
    out = output_name(task)
    with quiet(), torch.no_grad():
        torch.onnx.export(
            head,
            (ids, mask),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=[out],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}, out: {0: "batch"}},
            opset_version=17,
            dynamo=False,  # the TorchScript exporter gives a plain graph that ORT's quantiser handles
        )


def export_tflite(head: torch.nn.Module, path: Path, seq_len: int) -> None:
    import litert_torch

    sample = {
        "input_ids": torch.ones(1, seq_len, dtype=torch.int32),
        "attention_mask": torch.ones(1, seq_len, dtype=torch.int32),
    }
    with quiet():
        edge = litert_torch.convert(head, sample_args=(), sample_kwargs=sample)
        edge.export(str(path))


def io_spec(fmt: str, task: str, dim: int, seq_len: int | None) -> tuple[tuple[dict, ...], tuple[dict, ...]]:
    if fmt == "onnx":
        shape = ["batch", "sequence"]
        inputs = tuple({"name": n, "dtype": "int64", "shape": shape} for n in ("input_ids", "attention_mask"))
        outputs = ({"name": output_name(task), "dtype": "float32", "shape": ["batch", dim]},)
    else:
        inputs = tuple(
            {"name": n, "tensor": f"serving_default_{n}", "dtype": "int32", "shape": [1, seq_len]}
            for n in ("input_ids", "attention_mask")
        )
        outputs = ({"name": output_name(task), "tensor": "serving_default_output_0_output", "dtype": "float32", "shape": [1, dim]},)
    return inputs, outputs
