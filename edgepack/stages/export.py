"""fp32 export of the student, per format of the target profile, into the work cache (edgepack/export.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from .. import web
from ..cache import StageDir, hash_dir, hash_parts
from ..context import Artifact, BuildContext
from ..export import export_onnx, export_pte, export_tflite, io_spec, shipped_head
from ..modeling import for_signatures, with_token_states


def run(ctx: BuildContext) -> BuildContext:
    torch.manual_seed(ctx.options.seed)
    t = ctx.teacher
    # transformers.js pools the token states itself (issue #14): the graph returns them too.
    token_states = ctx.target.layout == web.LAYOUT  # (web.check_teacher ran in the student stage)
    key = hash_parts("export-v5", ctx.student.info.get("hash") or str(ctx.student.dir), t.task,
                     t.pooling, t.normalize, [hash_dir(d) for d in t.dense], ctx.target.formats, ctx.target.sequence_buckets,
                     "pte" in ctx.target.formats and ctx.target.quantize.mode,
                     *(["token-states"] if token_states else []))  # other layouts keep their cached exports
    stage = StageDir(ctx.work_dir, "export", key)
    head = None
    if not stage.done:
        head = shipped_head(ctx.student.dir, t, max(ctx.target.sequence_buckets), ctx.options.allow_pickle)
    dim = _output_dim(head, stage.path)
    hidden = _hidden_dim(ctx.student.dir, t.family) if token_states else 0
    for fmt in ctx.target.formats if not stage.done else ():
        if fmt == "onnx":
            export_onnx(with_token_states(head) if token_states else head, stage.path / "model.fp32.onnx", t.task,
                        token_states=token_states)
        elif fmt == "pte":
            # One method with a dynamic length (export.py). A lowered program cannot be re-quantised,
            # so the int8 modes export from torch in the quantise stage (quant/executorch.py); the fp32
            # program is lowered only where it ships (mode "none"): lowering is most of a .pte's build time.
            if ctx.target.quantize.mode == "none":
                export_pte(head, stage.path / "model.fp32.pte", ctx.max_length)
        else:
            # One file, one signature per bucket: the weights are stored once (issue #12).
            export_tflite(for_signatures(head, t.family), stage.path / "model.fp32.tflite", tuple(ctx.target.sequence_buckets))
    stage.mark_done()  # renames the staging directory: the artifacts are named from the published one
    artifacts = []
    for fmt in ctx.target.formats:
        if fmt == "tflite":
            buckets = tuple(ctx.target.sequence_buckets)
            inputs, outputs, signatures = io_spec("tflite", t.task, dim, buckets)
            artifacts.append(Artifact(str(stage.path / "model.fp32.tflite"), "tflite", "fp32", buckets, inputs, outputs,
                                      signatures=signatures))
        else:
            inputs, outputs, _ = io_spec(fmt, t.task, dim, token_states_dim=hidden if fmt == "onnx" else 0)
            artifacts.append(Artifact(str(stage.path / f"model.fp32.{fmt}"), fmt, "fp32", (), inputs, outputs))
    student = dataclasses.replace(ctx.student, output_dim=dim)
    return dataclasses.replace(ctx, student=student, fp32_artifacts=tuple(artifacts))


def _hidden_dim(model_dir: Path, family: str) -> int:
    """Width of the token states (the student's hidden size)."""
    import json

    from ..families import FAMILIES
    from ..teacher import weights_dir

    config = json.loads((weights_dir(Path(model_dir)) / "config.json").read_text(encoding="utf-8"))
    return int(config[FAMILIES[family].hidden_key])


def _output_dim(head, stage_path: Path) -> int:
    marker = stage_path / "output_dim"
    if marker.is_file():
        return int(marker.read_text())
    with torch.no_grad():
        dim = int(head(torch.ones(1, 4, dtype=torch.long), torch.ones(1, 4, dtype=torch.long)).shape[-1])
    marker.write_text(str(dim))
    return dim
