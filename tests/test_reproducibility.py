"""Reproducibility: the same inputs and seed, built again from an empty cache into another directory,
give byte-identical model artifacts and identical parity metrics; only measured latencies and stage
timings (and the report files and hashes that carry them) differ. docs/reliability.md says why.
"""

from __future__ import annotations

import copy
import json

import pytest

import edgepack

# Files that must be byte-identical across two builds with the same inputs and seed.
IDENTICAL = ("model.onnx", "model.tflite", "tokenizer.json", "vocab.txt", "edgepack_runtime.py")
# Files that carry wall-clock measurements (latency, stage seconds), so they differ run to run.
TIMED = ("report.json", "report.md", "report.html")


@pytest.fixture(scope="module")
def second_build(tmp_path_factory, tiny_model, tiny_target, tiny_data):
    """The tiny bundle again: separate output dir, separate (empty) cache, same seed."""
    root = tmp_path_factory.mktemp("repro")
    out = root / "bundle"
    edgepack.build(target=str(tiny_target), model=str(tiny_model), data=(str(tiny_data),), out=out, cache_dir=root / "cache")
    return out


def _without_timings(manifest: dict) -> dict:
    m = copy.deepcopy(manifest)
    for entry in m.get("metrics", {}).get("formats", {}).values():
        entry.pop("latency_p50_ms", None)
    for name in TIMED:
        m["files"].pop(name, None)
    return m


def test_model_artifacts_are_byte_identical(tiny_bundle_ro, second_build):
    for name in IDENTICAL:
        a, b = tiny_bundle_ro / name, second_build / name
        assert a.is_file() and a.read_bytes() == b.read_bytes(), f"{name} differs between two identical builds"


def test_manifest_differs_only_in_timings(tiny_bundle_ro, second_build):
    a = json.loads((tiny_bundle_ro / "edgepack.json").read_text())
    b = json.loads((second_build / "edgepack.json").read_text())
    assert _without_timings(a) == _without_timings(b)
    assert a["golden"] == b["golden"]  # same token ids and the same expected outputs, bit for bit
    assert a["provenance"]["seed"] == b["provenance"]["seed"] == 0
    assert a["provenance"]["data_sha256"] == b["provenance"]["data_sha256"]


def test_parity_metrics_are_equal(tiny_bundle_ro, second_build):
    ra = json.loads((tiny_bundle_ro / "report.json").read_text())["metrics"]
    rb = json.loads((second_build / "report.json").read_text())["metrics"]
    assert ra["formats"].keys() == rb["formats"].keys()
    for fmt in ra["formats"]:
        for key in ("vs_teacher", "vs_student_fp32", "size_bytes"):
            assert ra["formats"][fmt][key] == rb["formats"][fmt][key], (fmt, key)
    assert ra.get("student_fp32_vs_teacher") == rb.get("student_fp32_vs_teacher")


def test_manifest_records_provenance(tiny_bundle_ro, tiny_data):
    import hashlib

    from edgepack.testing import TINY_SENTENCES

    prov = json.loads((tiny_bundle_ro / "edgepack.json").read_text())["provenance"]
    for tool in ("edgepack", "torch", "transformers", "onnxruntime", "litert-torch", "ai-edge-quantizer"):
        assert prov["tools"].get(tool), tool
    assert prov["profile"].endswith("tiny-target.toml")
    assert prov["data"] == str(tiny_data)
    # The hash is of the texts as used (deduplicated, in file order), so a reader can recompute it.
    assert prov["data_sha256"] == hashlib.sha256("\n".join(TINY_SENTENCES).encode()).hexdigest()
    assert prov["seed"] == 0
