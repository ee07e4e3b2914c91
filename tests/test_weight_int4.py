"""4-bit matrix weights (`[quantize] weight_bits = 4`, issue #12): ONNX com.microsoft.MatMulNBits with
4-bit blocks, TFLite blockwise int4 FULLY_CONNECTED shared by every signature; with `embedding_bits = 4`
too, every large tensor is int4. Same gates, check and fallback as int8. Tiny seeded models only."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from edgepack.check import check_bundle
from edgepack.errors import TargetError
from edgepack.quant import quantize
from edgepack.runtime import edgepack_runtime as rt
from edgepack.targets import QuantizeSpec, parse_target
from edgepack.testing import build_from_toml, tiny_target_toml


def w4_toml(extra="weight_bits = 4", mode="dynamic-int8", **budget) -> str:
    text = tiny_target_toml(mode=mode, **budget)
    return text.replace(f'mode = "{mode}"\n', f'mode = "{mode}"\n{extra}\n')


@pytest.mark.parametrize("mode,extra,message", [
    ("dynamic-int8", "weight_bits = 2", "'quantize.weight_bits' must be 8 or 4"),
    ("dynamic-int8", "weight_bits = 4\nweight_block_size = 48", "'quantize.weight_block_size' must be 32, 64, 128 or 256"),
    ("static-int8", "weight_bits = 4", "'quantize.weight_bits = 4' needs mode = \"dynamic-int8\""),
    ("fp16", "weight_bits = 4", "'quantize.weight_bits = 4' needs mode = \"dynamic-int8\""),
    ("dynamic-int8", "weight_bits = 4\nblock_size = 32", "'quantize.block_size' is for int8 blocks"),
])
def test_bad_weight_settings_are_refused_in_one_line(mode, extra, message):
    with pytest.raises(TargetError, match=message.replace("(", r"\(")) as exc:
        parse_target(w4_toml(extra=extra, mode=mode), "t.toml")
    assert "\n" not in exc.value.message and exc.value.message.startswith("t.toml: ")


@pytest.mark.parametrize("weight_bits,embedding_bits,label", [
    (8, 8, "int8"), (8, 4, "int8 (embeddings int4)"), (4, 8, "int4 matrices (embeddings int8)"), (4, 4, "int4")])
def test_precision_labels_and_runtime_requirements(weight_bits, embedding_bits, label):
    spec = QuantizeSpec(weight_bits=weight_bits, embedding_bits=embedding_bits)
    assert quantize.precision_of(spec) == label
    for fmt, runtime in (("onnx", "onnxruntime"), ("tflite", "litert")):
        features = [r["feature"] for r in quantize.runtime_requirements(fmt, spec) if r["runtime"] == runtime]
        assert any("4-bit weight blocks" in f or "int4 blockwise weights" in f for f in features) == (weight_bits == 4)


@pytest.fixture(scope="module")
def w4_bundle(tmp_path_factory, tiny_model, tiny_data, cache_dir) -> Path:
    tmp = tmp_path_factory.mktemp("w4")
    return build_from_toml(tmp, "w4", w4_toml("weight_bits = 4\nembedding_bits = 4", min_cosine_vs_student=0.98),
                           tiny_model, tiny_data, cache_dir)


def manifest(bundle: Path) -> dict:
    return json.loads((bundle / rt.MANIFEST).read_text())


def test_int4_bundle_passes_gates_check_and_records_its_needs(w4_bundle):
    report = json.loads((w4_bundle / "report.json").read_text())
    assert report["metrics"]["gates"]["passed"]
    assert report["quantize"]["weight_bits"] == 4
    assert check_bundle(w4_bundle).passed  # golden cases through every signature, as int8
    arts = {a["format"]: a for a in manifest(w4_bundle)["artifacts"]}
    assert {a["precision"] for a in arts.values()} == {"int4"}
    needs = {fmt: {(r["runtime"], r["min_version"]) for r in a["requires"]} for fmt, a in arts.items()}
    assert ("onnxruntime", quantize.INT4_MATRICES_ONNX["min_version"]) in needs["onnx"]
    assert ("litert", quantize.INT4_MATRICES_TFLITE["min_version"]) in needs["tflite"]
    assert "matrices int4, blocks of 32" in (w4_bundle / "report.md").read_text()


def test_onnx_matrices_are_4bit_matmulnbits(w4_bundle):
    graph = onnx.load(str(w4_bundle / "model.onnx")).graph
    nbits = [n for n in graph.node if n.op_type == "MatMulNBits"]
    assert nbits and all(n.domain == "com.microsoft" for n in nbits)
    attrs = [{a.name: a.i for a in n.attribute} for n in nbits]
    assert {(a["bits"], a["block_size"]) for a in attrs} == {(4, 32)}
    assert "MatMul" not in {n.op_type for n in graph.node if any("weight" in i for i in n.input)}


def test_tflite_matrices_are_int4_blocks_shared_by_both_signatures(w4_bundle):
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(w4_bundle / "model.tflite"))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    per_signature = []
    for sg in model.subgraphs:
        fc = [sg.tensors[op.inputs[1]] for op in sg.operators
              if names[max(model.operatorCodes[op.opcodeIndex].builtinCode, model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode)] == "FULLY_CONNECTED"]
        assert fc and {t.type for t in fc} == {schema.TensorType.INT4}
        assert {t.quantization.details.blockSize for t in fc} == {32}
        per_signature.append([t.buffer for t in fc])
    assert len(per_signature) == 2 and per_signature[0] == per_signature[1]  # one copy of each matrix


def test_int4_keeps_the_output_close_to_int8(w4_bundle, tiny_bundle_ro):
    from edgepack.testing import TINY_SENTENCES

    for fmt in ("onnx", "tflite"):
        a = rt.load_bundle(w4_bundle, format=fmt).embed(list(TINY_SENTENCES))
        b = rt.load_bundle(tiny_bundle_ro, format=fmt).embed(list(TINY_SENTENCES))
        assert (a * b).sum(1).min() > 0.98, fmt
        assert (w4_bundle / f"model.{fmt}").stat().st_size < (tiny_bundle_ro / f"model.{fmt}").stat().st_size


def test_an_old_litert_is_refused_for_int4_matrices(w4_bundle):
    [art] = [a for a in manifest(w4_bundle)["artifacts"] if a["format"] == "tflite"]
    with pytest.raises(rt.BackendUnavailable, match=r"needs ai-edge-litert >= 2\.1\.0 \(FULLY_CONNECTED with int4"):
        rt.check_requirements(art, "litert", "2.0.3")
    rt.check_requirements(art, "litert", "2.1.0")


def test_fallback_keeps_a_layer_float_under_int4(tmp_path, tiny_model, tiny_data, cache_dir):
    """An unreachable parity gate makes the fallback re-quantise with layers in float; it runs the same
    int4 recipe (quantize_file), so what it keeps float is excluded in both formats."""
    from edgepack.errors import GateFailed

    text = w4_toml("weight_bits = 4\nfallback_max_layers = 1", min_cosine_vs_student=0.99999999)
    with pytest.raises(GateFailed, match=r"fallback kept 1 most sensitive layer\(s\) in float \("):
        build_from_toml(tmp_path, "w4fb", text, tiny_model, tiny_data, cache_dir)
    assert not (tmp_path / "out-w4fb").exists()


def _precision_bench():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "bench" / "precision.py"
    spec = importlib.util.spec_from_file_location("precision_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("target", ["android-arm64", "android-arm64-teacher"])
def test_precision_bench_profiles_change_only_quantize_and_budget(target):
    """bench/precision.py builds each shipped profile with only [quantize] changed and the budget lifted."""
    from edgepack.targets import load_target

    bench = _precision_bench()
    shipped = load_target(target)
    for label, change in bench.OPTIONS.items():
        p = parse_target(bench.profile_text(target, change), "bench.toml")
        assert (p.student, p.sequence_buckets, p.formats) == (shipped.student, shipped.sequence_buckets, shipped.formats)
        assert (p.quantize.weight_bits, p.quantize.embedding_bits) == (change["weight_bits"], change["embedding_bits"])
        assert p.quantize.block_size == (0 if change.get("block_size") == 0 else shipped.quantize.block_size), label
        assert p.budget.max_size_mb == 1000.0 and p.budget.min_cosine_vs_student == 0.0
    single = parse_target(bench.profile_text(target, {}, buckets=[128], formats=["tflite"]), "bench.toml")
    assert single.sequence_buckets == (128,) and single.formats == ("tflite",) and single.quantize == shipped.quantize


def test_precision_bench_names_the_highest_minimum_per_runtime():
    bench = _precision_bench()
    reqs = [quantize.INT4_EMBEDDINGS_TFLITE, quantize.INT4_MATRICES_TFLITE, quantize.INT4_EMBEDDINGS_ONNX]
    assert bench.needs_line(reqs) == "litert ≥ 2.1.0; onnxruntime ≥ 1.20.0"
    assert bench.needs_line([]) == "any current"
