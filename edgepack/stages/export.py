"""fp32 export of the student, per format of the target profile, into the work cache (edgepack/export.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ..cache import StageDir, hash_dir, hash_parts
from ..context import Artifact, BuildContext
from ..export import export_onnx, export_pte, export_tflite, io_spec, shipped_head
from ..modeling import for_signatures


def run(ctx: BuildContext) -> BuildContext:
    torch.manual_seed(ctx.options.seed)
    t = ctx.teacher
    key = hash_parts("export-v5", ctx.student.info.get("hash") or str(ctx.student.dir), t.task,
                     t.pooling, t.normalize, [hash_dir(d) for d in t.dense], ctx.target.formats, ctx.target.sequence_buckets,
                     "pte" in ctx.target.formats and ctx.target.quantize.mode)
    stage = StageDir(ctx.work_dir, "export", key)
    head = None
    if not stage.done:
        head = shipped_head(ctx.student.dir, t, max(ctx.target.sequence_buckets), ctx.options.allow_pickle)
    dim = _output_dim(head, stage.path)
    artifacts = []
    for fmt in ctx.target.formats:
        if fmt == "onnx":
            path = stage.path / "model.fp32.onnx"
            if not stage.done:
                export_onnx(head, path, t.task)
            inputs, outputs, _ = io_spec("onnx", t.task, dim)
            artifacts.append(Artifact(str(path), "onnx", "fp32", (), inputs, outputs))
        elif fmt == "pte":
            # One method with a dynamic length (export.py). A lowered program cannot be re-quantised,
            # so the int8 modes export from torch in the quantise stage (quant/executorch.py); the fp32
            # program is lowered only where it ships (mode "none"): lowering is most of a .pte's build time.
            path = stage.path / "model.fp32.pte"
            if not stage.done and ctx.target.quantize.mode == "none":
                export_pte(head, path, ctx.max_length)
            inputs, outputs, _ = io_spec("pte", t.task, dim)
            artifacts.append(Artifact(str(path), "pte", "fp32", (), inputs, outputs))
        else:
            # One file, one signature per bucket: the weights are stored once (issue #12).
            buckets = tuple(ctx.target.sequence_buckets)
            path = stage.path / "model.fp32.tflite"
            if not stage.done:
                export_tflite(for_signatures(head, t.family), path, buckets)
            inputs, outputs, signatures = io_spec("tflite", t.task, dim, buckets)
            artifacts.append(Artifact(str(path), "tflite", "fp32", buckets, inputs, outputs, signatures=signatures))
    stage.mark_done()
    student = dataclasses.replace(ctx.student, output_dim=dim)
    return dataclasses.replace(ctx, student=student, fp32_artifacts=tuple(artifacts))


def _output_dim(head, stage_path: Path) -> int:
    marker = stage_path / "output_dim"
    if marker.is_file():
        return int(marker.read_text())
    with torch.no_grad():
        dim = int(head(torch.ones(1, 4, dtype=torch.long), torch.ones(1, 4, dtype=torch.long)).shape[-1])
    marker.write_text(str(dim))
    return dim
