"""report.json (everything measured) and report.md (the same, for people)."""

from __future__ import annotations

import json
from pathlib import Path


def manifest_metrics(metrics: dict) -> dict:
    """The compact subset kept in edgepack.json (the full set is in report.json)."""
    out = {"validation_texts": metrics.get("validation_texts"), "formats": {}}
    for fmt, m in metrics.get("formats", {}).items():
        out["formats"][fmt] = {
            "vs_teacher": m["vs_teacher"],
            "vs_student_fp32": m["vs_student_fp32"],
            "latency_p50_ms": {k: v["p50_ms"] for k, v in m["latency"]["buckets"].items()},
            "size_bytes": m["size_bytes"],
        }
    return out


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def markdown(ctx, metrics: dict) -> str:
    t, target = ctx.teacher, ctx.target
    lines = [
        f"# edgepack report: {target.name}",
        "",
        f"- task: **{t.task}**",
        f"- teacher: {t.description}",
        f"- student: {ctx.student_info.get('description', '?')}",
        f"- quantisation: {target.quantize.mode} (per-channel: {target.quantize.per_channel})",
        f"- validation: {metrics.get('validation_texts')} held-out texts from {metrics.get('validation_source')}",
        f"- gates: **{'passed' if metrics.get('gates', {}).get('passed') else 'FAILED'}**",
    ]
    for failure in metrics.get("gates", {}).get("failures", []):
        lines.append(f"  - {failure}")
    lines += fallback_markdown(metrics.get("fallback"), t.task)
    lines += ["", "## Parity", ""]
    if t.task == "text-classification":
        lines += ["| format | agreement vs teacher | agreement vs fp32 student | accuracy |", "|---|---|---|---|"]
        for fmt, m in metrics.get("formats", {}).items():
            lines.append(f"| {fmt} | {_fmt(m['vs_teacher']['agreement'])} | {_fmt(m['vs_student_fp32']['agreement'])} | {_fmt(m['vs_teacher'].get('accuracy', '-'))} |")
    else:
        lines += ["| format | cosine vs teacher (min / mean) | cosine vs fp32 student (min / mean) |", "|---|---|---|"]
        for fmt, m in metrics.get("formats", {}).items():
            vt, vs = m["vs_teacher"], m["vs_student_fp32"]
            lines.append(f"| {fmt} | {_fmt(vt['cosine_min'])} / {_fmt(vt['cosine_mean'])} | {_fmt(vs['cosine_min'])} / {_fmt(vs['cosine_mean'])} |")
        if "student_fp32_vs_teacher" in metrics:
            s = metrics["student_fp32_vs_teacher"]
            lines += ["", f"fp32 student vs teacher: cosine min {_fmt(s['cosine_min'])}, mean {_fmt(s['cosine_mean'])}."]
    lines += ["", "## Latency (single thread, this build machine's CPU)", "",
              "| format | input | p50 ms | p95 ms |", "|---|---|---|---|"]
    for fmt, m in metrics.get("formats", {}).items():
        for seq, lat in m["latency"]["buckets"].items():
            lines.append(f"| {fmt} | {seq} tokens | {lat['p50_ms']:.2f} | {lat['p95_ms']:.2f} |")
        s = m["latency"]["sentences"]
        lines.append(f"| {fmt} | validation sentences (mean {m['latency']['sentence_tokens_mean']:.0f} tokens) | {s['p50_ms']:.2f} | {s['p95_ms']:.2f} |")
    lines += ["", "Measured on the build machine (usually x86-64). ARM phones and boards run different kernels "
              "(XNNPACK / KleidiAI); expect different absolute numbers, and measure on the device.", "",
              "## Size", "", "| format | bytes | MB |", "|---|---|---|"]
    for fmt, m in metrics.get("formats", {}).items():
        lines.append(f"| {fmt} | {m['size_bytes']} | {m['size_bytes'] / 1e6:.2f} |")
    if ctx.timings:
        lines += ["", "## Build stages", "", "| stage | seconds |", "|---|---|"]
        lines += [f"| {k} | {v:.1f} |" for k, v in ctx.timings.items()]
    return "\n".join(lines) + "\n"


def fallback_markdown(fb: dict | None, task: str) -> list[str]:
    """What the accuracy-aware int8 fallback kept in float, with the gate figures before and after."""
    if not fb:
        return []
    key = "agreement" if task == "text-classification" else "cosine_min"
    lines = ["", "## Accuracy-aware int8 fallback", "",
             f"A parity gate failed with every layer in int8; the most sensitive layers were kept in float "
             f"(at most {fb['max_layers']}).", "",
             f"| format | kept in float | {key} vs fp32 student before → after | {key} vs teacher before → after | size before → after (bytes) | passed |",
             "|---|---|---|---|---|---|"]
    for fmt, e in fb["formats"].items():
        b, a = e["before"], e.get("after", e["before"])
        lines.append(
            f"| {fmt} | {', '.join(e['kept_float']) or '-'} | {_fmt(b['vs_student_fp32'][key])} → {_fmt(a['vs_student_fp32'][key])} "
            f"| {_fmt(b['vs_teacher'][key])} → {_fmt(a['vs_teacher'][key])} | {b['size_bytes']} → {a['size_bytes']} | {'yes' if e['passed'] else 'no'} |"
        )
    for fmt, e in fb["formats"].items():
        ranked = ", ".join(f"{x['layer']} ({x['error_removed']:.2e})" for x in e["sensitivity"][:5])
        lines.append(f"\n{fmt}: most sensitive layers (output error removed by keeping each alone in float): {ranked}.")
    return lines


def write_reports(ctx, dst: Path) -> None:
    metrics = ctx.metrics
    doc = {
        "target": ctx.target.name,
        "task": ctx.teacher.task,
        "teacher": ctx.teacher.description,
        "student": ctx.student_info,
        "quantize": {"mode": ctx.target.quantize.mode, "per_channel": ctx.target.quantize.per_channel,
                     "exclude": list(ctx.target.quantize.exclude), "activations": ctx.target.quantize.activations,
                     "full_integer": ctx.target.quantize.full_integer,
                     "kept_float": {f: e["kept_float"] for f, e in metrics.get("fallback", {}).get("formats", {}).items()}},
        "metrics": metrics,
        "timings_s": ctx.timings,
    }
    (dst / "report.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    (dst / "report.md").write_text(markdown(ctx, metrics), encoding="utf-8")
    from ..html_report import write as write_html

    write_html(ctx, metrics, dst)
