"""report.html: the build report as one self-contained page (inline CSS and hand-written SVG; no
scripts, no fonts or libraries from the network), with the plots a person would rather look at than
read: latency distribution per bucket, bundle-vs-teacher agreement, and where the bytes go.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np

from ..inspect import details
from .markdown import fallback_markdown, quantisation_label

COLOURS = {"embeddings": "#4e79a7", "encoder": "#f28e2b", "other": "#76b7b2", "graph": "#bab0ac"}
FORMAT_COLOURS = {"onnx": "#4e79a7", "tflite": "#e15759", "pte": "#59a14f"}


# -- SVG helpers ---------------------------------------------------------------------------------
def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    ticks, t = [], start
    while t <= hi + 1e-12:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _fmt_tick(v: float, step: float | None = None) -> str:
    """Enough decimals to tell neighbouring ticks apart (a cosine axis may span 0.9995..1)."""
    if step:
        decimals = next((d for d in range(9) if abs(round(step, d) - step) < step * 1e-6), 8)
        return f"{v:.{decimals}f}"
    return f"{v:g}" if abs(v) >= 0.01 or v == 0 else f"{v:.0e}"


def _step(ticks: list[float]) -> float | None:
    return ticks[1] - ticks[0] if len(ticks) > 1 else None


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'role="img" aria-label="{_e(title)}"><title>{_e(title)}</title>' + "".join(body) + "</svg>")


def latency_svg(metrics: dict) -> str:
    """One row per (format, bucket): box from p25 to p75, whiskers p5..p95, dots for every sample."""
    rows = []
    for fmt, m in metrics.get("formats", {}).items():
        lat = m.get("latency", {})
        for seq, b in lat.get("buckets", {}).items():
            rows.append((fmt, f"{seq} tokens", b))
        if lat.get("sentences"):
            rows.append((fmt, "real sentences", lat["sentences"]))
    if not rows:
        return "<p>No latency measured.</p>"
    samples = [np.asarray(r[2].get("samples_ms") or [r[2]["p50_ms"], r[2]["p95_ms"]], dtype=float) for r in rows]
    # p95-based axis: one preempted call must not squash every box into a line (outliers are clipped)
    hi = max(float(np.percentile(s, 95)) for s in samples) * 1.3
    left, right, row_h, top = 170, 30, 34, 20
    width, height = 760, top + row_h * len(rows) + 45
    scale = (width - left - right) / hi
    body = []
    ticks = _nice_ticks(0, hi)
    for t in ticks:
        x = left + t * scale
        body.append(f'<line x1="{x:.1f}" y1="{top - 5}" x2="{x:.1f}" y2="{height - 40}" class="grid"/>'
                    f'<text x="{x:.1f}" y="{height - 25}" class="tick" text-anchor="middle">{_fmt_tick(t, _step(ticks))}</text>')
    body.append(f'<text x="{left + (width - left - right) / 2:.0f}" y="{height - 6}" class="axis" text-anchor="middle">milliseconds per call (batch 1, single thread)</text>')
    rng = np.random.default_rng(0)
    for i, ((fmt, label, stats), s) in enumerate(zip(rows, samples)):
        y = top + i * row_h + row_h / 2
        colour = FORMAT_COLOURS.get(fmt, "#59a14f")
        p5, p25, p50, p75, p95 = (float(np.percentile(s, q)) for q in (5, 25, 50, 75, 95))
        body.append(f'<text x="{left - 8}" y="{y + 4:.1f}" class="label" text-anchor="end">{_e(fmt)} · {_e(label)}</text>')
        for v, jit in zip(np.clip(s, 0, hi), rng.uniform(-8, 8, len(s))):
            body.append(f'<circle cx="{left + v * scale:.1f}" cy="{y + jit:.1f}" r="1.6" fill="{colour}" opacity="0.35"/>')
        body.append(f'<line x1="{left + p5 * scale:.1f}" y1="{y:.1f}" x2="{left + p95 * scale:.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="1.5"/>')
        body.append(f'<rect x="{left + p25 * scale:.1f}" y="{y - 7:.1f}" width="{max((p75 - p25) * scale, 1):.1f}" height="14" '
                    f'fill="{colour}" fill-opacity="0.25" stroke="{colour}"><title>{_e(fmt)} {_e(label)}: p50 {stats["p50_ms"]:.2f} ms, '
                    f'p95 {stats["p95_ms"]:.2f} ms, n={len(s)}</title></rect>')
        body.append(f'<line x1="{left + p50 * scale:.1f}" y1="{y - 9:.1f}" x2="{left + p50 * scale:.1f}" y2="{y + 9:.1f}" stroke="#222" stroke-width="2"/>')
        body.append(f'<text x="{min(left + p95 * scale + 6, width - right):.1f}" y="{y + 4:.1f}" class="tick">{stats["p50_ms"]:.2f}</text>')
    return _svg(width, height, body, "Latency distribution per bucket")


def histogram_svg(values, floor: float | None, title: str) -> str:
    vals = np.asarray(values, dtype=float)
    if vals.size == 0:
        return ""
    lo = min(float(vals.min()), floor if floor else 1.0)
    lo = min(lo, 1.0 - 1e-4)
    lo = max(-1.0, lo - (1.0 - lo) * 0.05)
    bins = 30
    counts, edges = np.histogram(vals, bins=bins, range=(lo, 1.0))
    left, right, top, bottom = 50, 35, 15, 45
    width, height = 760, 240
    w, h = width - left - right, height - top - bottom
    peak = max(int(counts.max()), 1)
    body = []
    for t in _nice_ticks(0, peak, 4):
        y = top + h - t / peak * h
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" class="grid"/>'
                    f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{int(t)}</text>')
    for c, a, b in zip(counts, edges[:-1], edges[1:]):
        x = left + (a - lo) / (1.0 - lo) * w
        bw = (b - a) / (1.0 - lo) * w
        bh = c / peak * h
        body.append(f'<rect x="{x:.1f}" y="{top + h - bh:.1f}" width="{max(bw - 1, 0.5):.1f}" height="{bh:.1f}" fill="#4e79a7">'
                    f'<title>{a:.4f}..{b:.4f}: {int(c)} sentences</title></rect>')
    ticks = _nice_ticks(lo, 1.0, 6)
    for t in ticks:
        x = left + (t - lo) / (1.0 - lo) * w
        body.append(f'<text x="{x:.1f}" y="{top + h + 16}" class="tick" text-anchor="middle">{_fmt_tick(t, _step(ticks))}</text>')
    if floor:
        x = left + (floor - lo) / (1.0 - lo) * w
        body.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + h}" stroke="#c00" stroke-dasharray="4 3"/>'
                    f'<text x="{x + 4:.1f}" y="{top + 12}" class="tick" fill="#c00">gate {floor:g}</text>')
    body.append(f'<text x="{left + w / 2:.0f}" y="{height - 6}" class="axis" text-anchor="middle">{_e(title)}</text>')
    return _svg(width, height, body, title)


def scatter_svg(scatter: dict, title: str) -> str:
    pts = np.asarray(scatter.get("points") or [], dtype=float)
    if pts.size == 0:
        return ""
    lo = float(min(pts.min(), 0.0 if pts.min() >= 0 else pts.min()))
    hi = float(max(pts.max(), 1.0 if pts.max() > 0.5 else pts.max()))
    pad = (hi - lo) * 0.03 or 0.01
    lo, hi = lo - pad, hi + pad
    size, left, bottom, top, right = 360, 55, 45, 12, 12
    w = size - left - right
    h = size - top - bottom

    def xy(x, y):
        return left + (x - lo) / (hi - lo) * w, top + h - (y - lo) / (hi - lo) * h

    body = []
    ticks = _nice_ticks(lo, hi, 5)
    for t in ticks:
        x, y = xy(t, t)
        body.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + h}" class="grid"/>'
                    f'<line x1="{left}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" class="grid"/>'
                    f'<text x="{x:.1f}" y="{top + h + 15}" class="tick" text-anchor="middle">{_fmt_tick(t, _step(ticks))}</text>'
                    f'<text x="{left - 5}" y="{y + 4:.1f}" class="tick" text-anchor="end">{_fmt_tick(t, _step(ticks))}</text>')
    (x0, y0), (x1, y1) = xy(lo, lo), xy(hi, hi)
    body.append(f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="#888" stroke-dasharray="4 3"/>')
    for x, y in pts:
        cx, cy = xy(x, y)
        body.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.2" fill="#e15759" fill-opacity="0.55"/>')
    body.append(f'<text x="{left + w / 2:.0f}" y="{size - 8}" class="axis" text-anchor="middle">{_e(scatter.get("x_label", "teacher"))}</text>')
    body.append(f'<text transform="translate(14 {top + h / 2:.0f}) rotate(-90)" class="axis" text-anchor="middle">{_e(scatter.get("y_label", "bundle"))}</text>')
    return _svg(size, size, body, title)


def size_parts(root: Path, artifacts) -> list[dict]:
    """Bytes per part for each shipped artifact (see edgepack.inspect)."""
    out = []
    for a in artifacts:
        path = Path(root) / a.path
        if not path.is_file():
            continue
        try:
            found = details(path, a.format)
        except Exception:  # a report must not fail the build because a graph could not be parsed
            continue
        w = found["weights"]
        parts = dict(w["parts"])
        parts["graph"] = max(path.stat().st_size - w["bytes"], 0)  # structure, metadata, scalars
        out.append({"path": a.path, "format": a.format, "bytes": path.stat().st_size, "parts": parts,
                    "quantised_share_params": w["quantised_share_params"]})
    return out


def size_svg(rows: list[dict]) -> str:
    if not rows:
        return "<p>No artifacts to measure.</p>"
    left, right, row_h, top = 170, 150, 30, 10
    width = 760
    height = top + row_h * len(rows) + 40
    biggest = max(r["bytes"] for r in rows)
    scale = (width - left - right) / biggest
    body = []
    for i, r in enumerate(rows):
        y = top + i * row_h
        body.append(f'<text x="{left - 8}" y="{y + 17}" class="label" text-anchor="end">{_e(r["path"])}</text>')
        x = left
        for part in ("embeddings", "encoder", "other", "graph"):
            v = r["parts"].get(part, 0)
            if v <= 0:
                continue
            body.append(f'<rect x="{x:.1f}" y="{y + 4}" width="{v * scale:.1f}" height="18" fill="{COLOURS[part]}">'
                        f'<title>{part}: {v / 1e6:.3f} MB</title></rect>')
            x += v * scale
        body.append(f'<text x="{x + 6:.1f}" y="{y + 17}" class="tick">{r["bytes"] / 1e6:.2f} MB · {r["quantised_share_params"]:.0%} quantised</text>')
    ly = top + row_h * len(rows) + 18
    for j, part in enumerate(("embeddings", "encoder", "other", "graph")):
        x = left + j * 130
        body.append(f'<rect x="{x}" y="{ly - 10}" width="12" height="12" fill="{COLOURS[part]}"/>'
                    f'<text x="{x + 17}" y="{ly}" class="tick">{"graph + metadata" if part == "graph" else part}</text>')
    return _svg(width, height, body, "Size breakdown per artifact")


# -- the page --------------------------------------------------------------------------------------
CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:800px;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:right}
td:first-child,th:first-child{text-align:left}.pass{color:#1a7f37;font-weight:600}.fail{color:#c00;font-weight:600}
svg{max-width:100%;height:auto;display:block;margin:.5rem 0}svg .grid{stroke:#eee}svg .tick{font-size:11px;fill:#555}
svg .label{font-size:12px;fill:#222}svg .axis{font-size:12px;fill:#333}.note{color:#666;font-size:.9rem}
.row{display:flex;flex-wrap:wrap;gap:1rem}
"""


def _table(header, rows) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _f(v, digits=4) -> str:
    return f"{v:.{digits}f}" if isinstance(v, float) else ("-" if v is None else str(v))


def _markdown_to_html(lines: list[str]) -> str:
    """Just enough Markdown (headings, pipe tables, paragraphs) to reuse report.md's sections here."""
    out, table = [], []
    for line in [*lines, ""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-: ") for c in cells):
                table.append(cells)
            continue
        if table:
            out.append(_table(table[0], table[1:]))
            table = []
        text = line.strip()
        if text.startswith("#"):
            out.append(f"<h2>{_e(text.lstrip('#').strip())}</h2>")
        elif text:
            out.append(f"<p>{_e(text)}</p>")
    return "\n".join(out)


def _fallback_html(metrics: dict, task: str) -> str:
    """The accuracy-aware int8 fallback (issue #5 part A): same content as report.md's section."""
    if not metrics.get("fallback"):
        return ""
    try:
        return _markdown_to_html(fallback_markdown(metrics["fallback"], task))
    except (KeyError, TypeError, ValueError):  # a report never fails a build
        return ""


def render(ctx, metrics: dict, size_rows: list[dict]) -> str:
    t, target = ctx.teacher, ctx.target
    gates = metrics.get("gates", {})
    passed = gates.get("passed")
    out = [f"<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content='width=device-width'>"
           f"<title>edgepack report: {_e(target.name)}</title><style>{CSS}</style></head><body>",
           f"<h1>edgepack report: {_e(target.name)}</h1>",
           _table(["", ""], [
               ["task", t.task], ["teacher", t.description], ["student", ctx.student.info.get("description", "?")],
               ["quantisation", quantisation_label(target.quantize)],
               ["validation", f"{metrics.get('validation_texts')} held-out texts from {metrics.get('validation_source')}"],
           ]),
           f"<p>Gates: <span class='{'pass' if passed else 'fail'}'>{'passed' if passed else 'FAILED'}</span></p>"]
    if gates.get("failures"):
        out.append("<ul>" + "".join(f"<li class=fail>{_e(f)}</li>" for f in gates["failures"]) + "</ul>")

    out.append("<h2>Parity with the teacher</h2>")
    formats = metrics.get("formats", {})
    if t.task == "text-classification":
        out.append(_table(["format", "agreement vs teacher", "agreement vs fp32 student", "accuracy"],
                          [[f, _f(m["vs_teacher"].get("agreement")), _f(m["vs_student_fp32"].get("agreement")), _f(m["vs_teacher"].get("accuracy"))]
                           for f, m in formats.items()]))
    else:
        out.append(_table(["format", "cosine vs teacher min", "mean", "cosine vs fp32 student min", "mean"],
                          [[f, _f(m["vs_teacher"].get("cosine_min")), _f(m["vs_teacher"].get("cosine_mean")),
                            _f(m["vs_student_fp32"].get("cosine_min")), _f(m["vs_student_fp32"].get("cosine_mean"))] for f, m in formats.items()]))
    out.append(_fallback_html(metrics, t.task))
    floor = getattr(target.budget, "min_cosine_vs_teacher", 0) or None
    plots = []
    for fmt, m in formats.items():
        p = m.get("plot") or {}
        if p.get("cosine_vs_teacher"):
            out.append(f"<h3>{_e(fmt)}: per-sentence cosine to the teacher</h3>")
            out.append(histogram_svg(p["cosine_vs_teacher"], floor, f"{fmt}: cosine of each validation sentence's embedding to the teacher's"))
        if p.get("scatter"):
            plots.append(f"<div><h3>{_e(fmt)}: bundle vs teacher</h3>{scatter_svg(p['scatter'], f'{fmt}: bundle vs teacher')}</div>")
    if plots:
        out.append("<div class=row>" + "".join(plots) + "</div>")
        out.append("<p class=note>Points on the dashed diagonal mean the bundle agrees with the teacher exactly.</p>")

    out.append("<h2>Latency</h2>")
    out.append(latency_svg(metrics))
    out.append("<p class=note>Box: p25–p75; line: p5–p95; black tick: median (its value on the right); dots: every timed call. "
               "Measured on the build machine (usually x86-64); ARM phones run different kernels (XNNPACK / KleidiAI), so "
               "measure on the device with <code>edgepack bench</code>.</p>")

    out.append("<h2>Size</h2>")
    out.append(size_svg(size_rows))
    out.append(_table(["file", "MB", "embeddings MB", "encoder MB", "other MB", "graph MB", "int8 share of params"],
                      [[r["path"], f"{r['bytes'] / 1e6:.2f}", *(f"{r['parts'].get(k, 0) / 1e6:.3f}" for k in ("embeddings", "encoder", "other", "graph")),
                        f"{r['quantised_share_params']:.1%}"] for r in size_rows]))
    if ctx.timings:
        out.append("<h2>Build stages</h2>")
        out.append(_table(["stage", "seconds"], [[k, f"{v:.1f}"] for k, v in ctx.timings.items()]))
    out.append("<p class=note>Written by edgepack. Self-contained: no scripts, nothing loaded from the network.</p></body></html>")
    return "\n".join(out) + "\n"


def write(ctx, metrics: dict, dst: Path) -> Path:
    rows = size_parts(ctx.staging_dir, ctx.artifacts)
    path = Path(dst) / "report.html"
    path.write_text(render(ctx, metrics, rows), encoding="utf-8")
    return path
