"""report.html: self-contained, well-formed SVG plots that carry the measured data."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

SVG = re.compile(r"<svg.*?</svg>", re.S)


def svgs(page: str) -> dict[str, ET.Element]:
    out = {}
    for block in SVG.findall(page):
        root = ET.fromstring(block)  # well-formed XML: every label was escaped
        out[root.get("aria-label")] = root
    return out


@pytest.fixture(scope="module")
def page(tiny_bundle_ro) -> str:
    return (tiny_bundle_ro / "report.html").read_text(encoding="utf-8")


def test_report_html_is_shipped_and_hashed(tiny_bundle_ro):
    manifest = json.loads((tiny_bundle_ro / "edgepack.json").read_text())
    assert "report.html" in manifest["files"]


def test_report_html_is_self_contained(page):
    assert page.startswith("<!doctype html>")
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert "@import" not in page and "url(" not in page
    assert not re.search(r"\b(src|href)\s*=", page)
    # the only URL is the SVG namespace, which is never fetched
    assert set(re.findall(r"https?://[^\s\"']+", page)) == {"http://www.w3.org/2000/svg"}


def test_report_has_latency_parity_and_size_plots(page):
    plots = svgs(page)
    assert "Latency distribution per bucket" in plots
    assert "Size breakdown per artifact" in plots
    assert {"onnx: bundle vs teacher", "tflite: bundle vs teacher"} <= set(plots)
    assert any(k.startswith("onnx: cosine of each validation sentence") for k in plots)


def test_latency_plot_draws_every_sample(page, tiny_bundle_ro):
    metrics = json.loads((tiny_bundle_ro / "report.json").read_text())["metrics"]
    expected = 0
    for m in metrics["formats"].values():
        expected += sum(len(b["samples_ms"]) for b in m["latency"]["buckets"].values())
        expected += len(m["latency"]["sentences"]["samples_ms"])
    latency = svgs(page)["Latency distribution per bucket"]
    dots = [c for c in latency.iter("{http://www.w3.org/2000/svg}circle")]
    assert len(dots) == expected > 0


def test_histogram_counts_every_validation_sentence(page, tiny_bundle_ro):
    metrics = json.loads((tiny_bundle_ro / "report.json").read_text())["metrics"]
    n = metrics["validation_texts"]
    hist = next(v for k, v in svgs(page).items() if k.startswith("onnx: cosine of each"))
    counts = [int(t.text.split(": ")[1].split()[0]) for t in hist.iter("{http://www.w3.org/2000/svg}title") if "sentences" in (t.text or "")]
    assert sum(counts) == n == len(metrics["formats"]["onnx"]["plot"]["cosine_vs_teacher"])


def test_size_plot_matches_the_files(page, tiny_bundle_ro):
    size = svgs(page)["Size breakdown per artifact"]
    labels = [t.text for t in size.iter("{http://www.w3.org/2000/svg}text")]
    for name in ("model.onnx", "model.tflite"):
        assert name in labels
        mb = f"{(tiny_bundle_ro / name).stat().st_size / 1e6:.2f} MB"
        assert any(lbl and lbl.startswith(mb) for lbl in labels)


def test_plot_data_embeddings_on_the_diagonal_when_identical():
    from edgepack.measure.stats import plot_data

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(12, 8))
    data = plot_data("sentence-embedding", emb, emb)
    assert np.allclose(data["cosine_vs_teacher"], 1.0)
    pts = np.asarray(data["scatter"]["points"])
    assert len(pts) == 36 and np.allclose(pts[:, 0], pts[:, 1], atol=1e-4)
    noisy = plot_data("sentence-embedding", emb + rng.normal(scale=0.5, size=emb.shape), emb)
    assert min(noisy["cosine_vs_teacher"]) < 0.99


def test_plot_data_classifier_uses_probabilities():
    from edgepack.measure.stats import plot_data

    logits = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    data = plot_data("text-classification", logits, logits)
    assert "cosine_vs_teacher" not in data
    pts = np.asarray(data["scatter"]["points"])
    assert np.allclose(pts[:, 0], pts[:, 1]) and np.all((pts >= 0.5) & (pts <= 1))


def test_classifier_report_has_probability_scatter(tiny_classifier_bundle_ro):
    page = (tiny_classifier_bundle_ro / "report.html").read_text(encoding="utf-8")
    plots = svgs(page)
    assert "onnx: bundle vs teacher" in plots
    assert "teacher probability of its top class" in page


def test_svg_escapes_labels():
    from edgepack.report.html import histogram_svg

    svg = histogram_svg([0.99, 0.995, 1.0], 0.99, "cosine <for> \"a&b\"")
    root = ET.fromstring(svg)
    assert root.get("aria-label") == "cosine <for> \"a&b\""


def test_failed_gate_still_writes_html_report(tiny_model, tiny_data, cache_dir, tmp_path):
    import edgepack
    from edgepack.errors import GateFailed
    from edgepack.testing import tiny_target_toml

    target = tmp_path / "strict.toml"
    target.write_text(tiny_target_toml(formats=("onnx",), max_size_mb=0.001), encoding="utf-8")
    with pytest.raises(GateFailed) as info:
        edgepack.build(target=str(target), model=str(tiny_model), data=(str(tiny_data),), out=tmp_path / "out", cache_dir=cache_dir)
    from pathlib import Path

    report_md = re.search(r"report: (\S+report\.md)", info.value.message).group(1)
    html_page = Path(report_md).with_name("report.html")
    text = html_page.read_text(encoding="utf-8")
    assert "FAILED" in text and "max_size_mb" in text
    assert "Size breakdown per artifact" in svgs(text)
    assert not (tmp_path / "out").exists()


def test_markdown_sections_render_as_html_tables():
    """The fallback section (issue #5 part A) is reused from report.md through this converter."""
    from edgepack.report.html import _fallback_html, _markdown_to_html

    page = _markdown_to_html(["## Accuracy-aware <int8> fallback", "", "| format | kept |", "|---|---|", "| onnx | encoder.5 |", "", "ranked: a, b"])
    assert "<h2>Accuracy-aware &lt;int8&gt; fallback</h2>" in page
    assert "<th>format</th><th>kept</th>" in page and "<td>onnx</td><td>encoder.5</td>" in page
    assert "<p>ranked: a, b</p>" in page and "---" not in page
    assert _fallback_html({}, "sentence-embedding") == ""
