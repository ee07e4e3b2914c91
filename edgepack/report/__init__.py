"""The build report, three renderings of the same measured figures: report.json (everything),
report.md (markdown.py) and report.html (html.py)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from .html import write as write_html
from .markdown import markdown


def write_reports(ctx, dst: Path) -> None:
    metrics = ctx.metrics
    q = ctx.target.quantize
    doc = {
        "target": ctx.target.name,
        "task": ctx.teacher.task,
        "teacher": ctx.teacher.description,
        "student": ctx.student.info,
        "quantize": {"mode": q.mode, "per_channel": q.per_channel, "exclude": list(q.exclude), "activations": q.activations,
                     "full_integer": q.full_integer, "block_size": q.block_size,
                     "embedding_bits": q.embedding_bits, "embedding_block_size": q.embedding_block_size,
                     "weight_bits": q.weight_bits, "weight_block_size": q.weight_block_size,
                     "kept_float": {f: e["kept_float"] for f, e in metrics.get("fallback", {}).get("formats", {}).items()}},
        "metrics": metrics,
        "timings_s": ctx.timings,
    }
    (dst / "report.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    (dst / "report.md").write_text(markdown(ctx, metrics), encoding="utf-8")
    write_html(ctx, metrics, dst)


def write_failed_report(ctx) -> Path:
    """A failed gate leaves --out alone; its report goes to the work dir for the user to read."""
    dst = Path(tempfile.mkdtemp(prefix=f"failed-{ctx.target.name}-", dir=ctx.work_dir))
    write_reports(ctx, dst)
    return dst / "report.md"
