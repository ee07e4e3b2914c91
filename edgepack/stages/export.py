"""fp32 export of the student, per format of the target profile, into the work cache.

ONNX: one graph with dynamic batch and sequence length (int64 inputs).
TFLite: litert-torch needs static shapes, so one graph per sequence bucket, batch 1, int32 inputs.
Both graphs end in the product (`embedding` or `logits`), see modeling.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import warnings
from pathlib import Path

import torch

from ..cache import StageDir, hash_parts
from ..context import Artifact, BuildContext
from ..modeling import load_hf_model, wrap


def output_name(task: str) -> str:
    return "logits" if task == "text-classification" else "embedding"


@contextlib.contextmanager
def quiet():
    """The converters print pages of progress and warnings; the CLI shows its own progress."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                yield
        finally:
            logging.disable(previous)


def load_student_head(ctx: BuildContext) -> torch.nn.Module:
    t = ctx.teacher
    model = load_hf_model(ctx.student_dir, t.task, ctx.options.allow_pickle)
    return wrap(model, t.task, t.family, t.pooling, t.normalize)


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


def run(ctx: BuildContext) -> BuildContext:
    torch.manual_seed(ctx.options.seed)
    key = hash_parts("export-v1", ctx.student_info.get("hash") or str(ctx.student_dir), ctx.teacher.task,
                     ctx.teacher.pooling, ctx.teacher.normalize, ctx.target.formats, ctx.target.sequence_buckets)
    stage = StageDir(ctx.work_dir, "export", key)
    head = None
    if not stage.done:
        head = load_student_head(ctx)
    dim = _output_dim(ctx, head, stage.path)
    artifacts = []
    for fmt in ctx.target.formats:
        if fmt == "onnx":
            path = stage.path / "model.fp32.onnx"
            if not stage.done:
                export_onnx(head, path, ctx.teacher.task)
            inputs, outputs = io_spec("onnx", ctx.teacher.task, dim, None)
            artifacts.append(Artifact(str(path), "onnx", "fp32", None, inputs, outputs))
        else:
            for seq in ctx.target.sequence_buckets:
                path = stage.path / f"model.fp32.seq{seq}.tflite"
                if not stage.done:
                    export_tflite(head, path, seq)
                inputs, outputs = io_spec("tflite", ctx.teacher.task, dim, seq)
                artifacts.append(Artifact(str(path), "tflite", "fp32", seq, inputs, outputs))
    stage.mark_done()
    return dataclasses.replace(ctx, fp32_artifacts=tuple(artifacts), metrics={**ctx.metrics, "output_dim": dim})


def _output_dim(ctx: BuildContext, head, stage_path: Path) -> int:
    marker = stage_path / "output_dim"
    if marker.is_file():
        return int(marker.read_text())
    with torch.no_grad():
        dim = int(head(torch.ones(1, 4, dtype=torch.long), torch.ones(1, 4, dtype=torch.long)).shape[-1])
    marker.write_text(str(dim))
    return dim


# Keep TensorFlow-style C++ logging quiet when LiteRT is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
