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
    artifacts = []
    for fmt in ctx.target.formats:
        if fmt == "onnx":
            path = stage.path / "model.fp32.onnx"
            if not stage.done:
                export_onnx(with_token_states(head) if token_states else head, path, t.task, token_states=token_states)
            inputs, outputs, _ = io_spec("onnx", t.task, dim, token_states_dim=hidden)
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
