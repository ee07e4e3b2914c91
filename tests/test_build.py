"""End to end on tiny seeded models: build, bundle layout, manifest, check, predict."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgepack.check import check_bundle
from edgepack.cli import main
from edgepack.runtime.edgepack_runtime import load_bundle, sha256_file


def test_bundle_layout_and_manifest(tiny_bundle_ro):
    files = {p.name for p in tiny_bundle_ro.iterdir()}
    assert {"edgepack.json", "model.onnx", "model.tflite", "tokenizer.json",
            "vocab.txt", "report.md", "report.json", "edgepack_runtime.py"} <= files
    assert len([f for f in files if f.endswith(".tflite")]) == 1  # buckets are signatures, not files
    m = json.loads((tiny_bundle_ro / "edgepack.json").read_text())
    assert m["format_version"] == 2 and m["task"] == "sentence-embedding"
    assert m["pooling"] == {"mode": "mean", "normalize": True, "in_graph": True}
    assert len(m["golden"]) >= 5
    for art in m["artifacts"]:
        assert art["sha256"] == sha256_file(tiny_bundle_ro / art["path"])
        assert [i["name"] for i in art["inputs"]] == ["input_ids", "attention_mask"]
        assert art["outputs"][0]["name"] == "embedding"
        if art["format"] == "tflite":
            assert art["inputs"][0]["dtype"] == "int32" and art["inputs"][0]["shape"] == [1, "sequence"]
            assert art["buckets"] == [16, 32]
            assert art["signatures"] == [{"name": "seq16", "sequence_length": 16}, {"name": "seq32", "sequence_length": 32}]
        else:
            assert art["buckets"] is None and art["signatures"] == []
    for rel, meta in m["files"].items():
        assert meta["sha256"] == sha256_file(tiny_bundle_ro / rel)
    assert set(m["provenance"]["tools"]) >= {"torch", "onnxruntime", "edgepack"}
    assert m["provenance"]["seed"] == 0 and len(m["provenance"]["data_sha256"]) == 64


def test_runtime_matches_between_formats_and_is_normalised(tiny_bundle_ro):
    texts = ["the movie was really good", "remind me to call home tomorrow", ""]
    onnx = load_bundle(tiny_bundle_ro, format="onnx").embed(texts)
    tfl = load_bundle(tiny_bundle_ro, format="tflite").embed(texts)
    assert onnx.shape == tfl.shape == (3, 32)
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1, atol=1e-3)
    assert (onnx * tfl).sum(1).min() > 0.99


def test_report_records_parity_latency_and_size(tiny_bundle_ro):
    report = json.loads((tiny_bundle_ro / "report.json").read_text())
    for fmt in ("onnx", "tflite"):
        m = report["metrics"]["formats"][fmt]
        assert m["vs_teacher"]["cosine_min"] > 0.99
        assert set(m["latency"]["buckets"]) == {"16", "32"}
        assert m["latency"]["buckets"]["16"]["p50_ms"] > 0
        assert m["size_bytes"] > 0
    assert report["metrics"]["gates"]["passed"] is True
    assert "the teacher itself" in report["student"]["description"]
    assert "# edgepack report" in (tiny_bundle_ro / "report.md").read_text()


def test_check_passes_on_a_fresh_bundle(tiny_bundle_ro):
    result = check_bundle(tiny_bundle_ro)
    assert result.passed, [c for c in result.failures]
    assert sum(c.group == "golden" for c in result.cases) >= 10  # >=5 cases x 2 formats


def test_one_changed_byte_in_a_model_fails_check(tiny_bundle):
    model = tiny_bundle / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    result = CliRunner().invoke(main, ["check", str(tiny_bundle)])
    assert result.exit_code == 1
    assert "model.onnx" in result.output and "sha256" in result.output


def test_drifted_golden_output_fails_check(tiny_bundle):
    path = tiny_bundle / "edgepack.json"
    m = json.loads(path.read_text())
    m["golden"][0]["expected"]["onnx"] = [-x for x in m["golden"][0]["expected"]["onnx"]]
    path.write_text(json.dumps(m))
    result = check_bundle(tiny_bundle)
    failed = [c.name for c in result.failures]
    assert failed == ["onnx: golden 0 " + repr(m["golden"][0]["text"][:40])]


def test_cli_check_exit_codes(tiny_bundle_ro, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(main, ["check", str(tiny_bundle_ro)])
    assert ok.exit_code == 0 and "checks passed" in ok.output
    missing = runner.invoke(main, ["check", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "Traceback" not in missing.output


def test_predict_embeddings_and_similarity(tiny_bundle_ro):
    runner = CliRunner()
    result = runner.invoke(main, ["predict", str(tiny_bundle_ro), "i love this phone", "i like this phone", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert len(out["embeddings"]) == 2 and -1 <= out["similarity"] <= 1
    plain = runner.invoke(main, ["predict", str(tiny_bundle_ro), "hello world"])
    assert plain.exit_code == 0 and "[32]" in plain.output


def test_classifier_bundle_labels_and_predict(tiny_classifier_bundle_ro):
    m = json.loads((tiny_classifier_bundle_ro / "edgepack.json").read_text())
    assert m["task"] == "text-classification" and m["labels"] == ["negative", "positive"]
    assert (tiny_classifier_bundle_ro / "labels.txt").read_text().split() == ["negative", "positive"]
    assert m["artifacts"][0]["outputs"][0]["name"] == "logits"
    report = json.loads((tiny_classifier_bundle_ro / "report.json").read_text())
    for fmt in ("onnx", "tflite"):
        assert report["metrics"]["formats"][fmt]["vs_teacher"]["agreement"] >= 0.9
        assert "accuracy" in report["metrics"]["formats"][fmt]["vs_teacher"]
    result = CliRunner().invoke(main, ["predict", str(tiny_classifier_bundle_ro), "the food is very bad", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)[0]
    assert row["label"] in ("negative", "positive")
    assert abs(sum(row["scores"].values()) - 1) < 1e-5
    assert check_bundle(tiny_classifier_bundle_ro).passed


def test_failed_gate_exits_1_and_leaves_out_untouched(tiny_model, tiny_data, cache_dir, tmp_path, tiny_bundle_ro):
    import shutil

    from edgepack.testing import tiny_target_toml

    target = tmp_path / "strict.toml"
    target.write_text(tiny_target_toml(formats=("onnx",), max_size_mb=0.001))
    out = tmp_path / "out"
    shutil.copytree(tiny_bundle_ro, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = CliRunner().invoke(main, ["build", "--target", str(target), "--model", str(tiny_model), "--data",
                                       str(tiny_data), "--out", str(out), "--cache-dir", str(cache_dir)])
    assert result.exit_code == 1, result.output
    assert "max_size_mb" in result.output and "report" in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not list(tmp_path.glob(".out.edgepack-tmp-*"))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--target", "nope"], "unknown target"),
        (["--model", "{missing}"], "no such directory"),
        (["--model", "{empty_dir}"], "no config.json"),
        (["--model", "{no_weights}"], "no model weights"),
        (["--data", "{empty_file}"], "no usable text"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(args, message, tmp_path, tiny_model, cache_dir):
    import shutil

    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    no_weights = tmp_path / "noweights"
    shutil.copytree(tiny_model, no_weights)
    (no_weights / "model.safetensors").unlink()
    empty_file = tmp_path / "empty.txt"
    empty_file.write_text("\n\n")
    subs = {"{missing}": str(tmp_path / "missing"), "{empty_dir}": str(empty_dir), "{no_weights}": str(no_weights), "{empty_file}": str(empty_file)}
    args = [subs.get(a, a) for a in args]
    if "--model" not in args:
        args += ["--model", str(tiny_model)]
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", *args, "--out", str(out), "--cache-dir", str(cache_dir)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("error:")]) == 1
    assert not out.exists()


def test_targets_command_lists_profiles():
    result = CliRunner().invoke(main, ["targets"])
    assert result.exit_code == 0
    for name in ("android-arm64", "linux-arm64", "x86-64"):
        assert name in result.output


@pytest.mark.slow
def test_default_build_on_builtin_teacher(real_bundle_ro):
    """Issue #3 done-when: check passes, predict works, one changed byte fails check."""
    result = check_bundle(real_bundle_ro)
    assert result.passed, result.failures
    m = json.loads((real_bundle_ro / "edgepack.json").read_text())
    assert m["target"] == "android-arm64" and m["task"] == "sentence-embedding"
    report = json.loads((real_bundle_ro / "report.json").read_text())
    assert report["metrics"]["gates"]["passed"]
    b = load_bundle(real_bundle_ro)
    sim = b.similarity("A man is playing a guitar.", "Someone plays the guitar.")
    far = b.similarity("A man is playing a guitar.", "The stock market fell sharply today.")
    assert sim > far


@pytest.mark.slow
def test_teacher_profile_keeps_every_sentence_above_099(session_dir, cache_dir):
    """Issue #3 done-when, on the profile that ships the teacher itself: cosine ≥ 0.99 to the teacher on
    every validation sentence, and `check` passes; issue #12: ONE .tflite (three signatures) ≤ 26 MB."""
    import edgepack

    out = session_dir / "bundle-real-teacher"
    ctx = edgepack.build(target="android-arm64-teacher", out=out, cache_dir=cache_dir)
    for fmt in ("tflite", "onnx"):
        m = ctx.metrics["formats"][fmt]
        assert m["vs_teacher"]["cosine_min"] >= 0.99, (fmt, m["vs_teacher"])
        assert m["largest_file_bytes"] <= 26e6
    assert [p.name for p in out.glob("*.tflite")] == ["model.tflite"]
    assert (out / "model.tflite").stat().st_size <= 26e6
    assert check_bundle(out).passed


def test_build_without_data_uses_the_builtin_corpora(tiny_model, cache_dir, tmp_path):
    """No --data: the project's corpus and the general corpus (issue #11); validation stays 64 texts of
    corpus.txt, and the manifest records both sources and the texts' sha256. A tiny teacher-strategy
    build stays fast: only the validation texts go through the models."""
    import edgepack
    from edgepack.data import builtin_texts
    from edgepack.testing import tiny_target_toml

    target = tmp_path / "onnx.toml"
    target.write_text(tiny_target_toml(formats=("onnx",), buckets=(16,)))
    ctx = edgepack.build(target=str(target), model=str(tiny_model), out=tmp_path / "out", cache_dir=cache_dir)
    expected = builtin_texts(seed=0)
    assert ctx.texts == expected and len(ctx.texts.validation) == 64
    provenance = json.loads((tmp_path / "out" / "edgepack.json").read_text())["provenance"]
    assert "corpus.txt" in provenance["data"] and "general.txt.gz" in provenance["data"]
    assert provenance["data_sha256"] == expected.sha256
    assert ctx.metrics["validation_texts"] == 64


def test_a_classifier_build_takes_its_tasks_buckets(tiny_classifier, tiny_labelled_data, tmp_path, cache_dir):
    """A profile's [shapes.text-classification] replaces the buckets for a classifier build only."""
    import edgepack
    from edgepack.testing import tiny_target_toml

    target = tmp_path / "t.toml"
    target.write_text(tiny_target_toml() + "[shapes.text-classification]\nsequence_buckets = [32]\n", encoding="utf-8")
    ctx = edgepack.build(target=str(target), model=str(tiny_classifier), data=(str(tiny_labelled_data),),
                         out=tmp_path / "b", cache_dir=cache_dir)
    assert ctx.target.sequence_buckets == (32,)
    [art] = [a for a in json.loads((tmp_path / "b" / "edgepack.json").read_text())["artifacts"] if a["format"] == "tflite"]
    assert art["signatures"] == [{"name": "seq32", "sequence_length": 32}]
