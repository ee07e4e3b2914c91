"""Quantisation modes (issue #5): calibration, exclusion lists, layer names, profile validation, and
every mode x format through `edgepack.build` + `edgepack.check` on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgepack.check import check_bundle  # what edgepack.check() calls
from edgepack.errors import TargetError
from edgepack.quant.layer_names import matches, onnx_layer, tflite_layer
from edgepack.targets import load_target, parse_target
from edgepack.testing import TINY_SENTENCES, build_from_toml, tiny_target_toml

TFL = ("edgepack.modeling.EmbeddingHead/transformers.models.bert.modeling_bert.BertModel_model/"
       "transformers.models.bert.modeling_bert.BertEncoder_encoder/transformers.models.bert.modeling_bert.BertLayer_1/"
       "transformers.models.bert.modeling_bert.BertAttention_attention/transformers.models.bert.modeling_bert.BertSelfAttention_self")


def quant_toml(mode="static-int8", formats=("onnx", "tflite"), **quantize) -> str:
    text = tiny_target_toml(formats=formats, mode=mode)
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in quantize.items())
    return text.replace(f'mode = "{mode}"\n', f'mode = "{mode}"\n{extra}')


build = build_from_toml


def report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


# -- layer names ---------------------------------------------------------------------------------------

def test_layer_names_agree_between_onnx_and_tflite():
    assert onnx_layer("/model/encoder/layer.1/attention/self/query/MatMul") == "encoder.1.attention.self.query"
    assert onnx_layer("/model/encoder/layer.1/attention/self/MatMul_1") == "encoder.1.attention.self"
    assert tflite_layer(TFL + "/torch.nn.modules.linear.Linear_query;1") == "encoder.1.attention.self.query"
    # fused names list neighbours first; the last scope is the op's own module
    assert tflite_layer(TFL + ";;" + TFL + "/torch.nn.modules.linear.Linear_key;1") == "encoder.1.attention.self.key"
    assert tflite_layer(TFL + ";5") == "encoder.1.attention.self"
    assert onnx_layer("/ReduceSum") == tflite_layer("edgepack.modeling.EmbeddingHead;3") == "head"


def test_exclude_patterns_match_whole_components():
    assert matches("encoder.1.output.dense", "", ["encoder.1"])
    assert not matches("encoder.10.output.dense", "", ["encoder.1"])
    assert matches("encoder.3.attention.self.query", "", ["query"])
    assert not matches("encoder.3.attention.self.key", "", ["query"])
    assert matches("x", "/model/encoder/layer.0/Softmax", ["Softmax"])  # raw ONNX node substrings still work


def test_excluding_the_model_root_layer_does_not_exclude_every_onnx_node(tiny_model, tmp_path):
    """Bug found in issue #11: the ops right under /model/ have the layer name `model`; as a raw
    substring `model` matched every node, so the fallback's first pick kept the whole graph float."""
    from edgepack.quant.quantize import onnx_nodes_matching

    assert onnx_layer("/model/Mul") == "model"
    layers = {"model", "encoder.0.attention.self.query"}
    assert not matches("encoder.0.attention.self.query", "/model/encoder/layer.0/attention/self/query/MatMul", ["model"], layers)
    assert matches("model", "/model/Mul", ["model"], layers)
    fp32 = _export_tiny_onnx(tiny_model, tmp_path)
    import onnx

    names = [n.name for n in onnx.load(str(fp32)).graph.node]
    picked = onnx_nodes_matching(fp32, ["model"])
    assert picked and all(onnx_layer(n) == "model" for n in picked) and len(picked) < len(names) / 2


def _export_tiny_onnx(model_dir, tmp_path):
    from edgepack.export import export_onnx
    from edgepack.modeling import load_hf_model, wrap

    path = tmp_path / "tiny.onnx"
    export_onnx(wrap(load_hf_model(model_dir, "sentence-embedding"), "sentence-embedding", "bert"), path, "sentence-embedding")
    return path


# -- profile validation ----------------------------------------------------------------------------------

def test_profile_rejects_bad_quantize_settings():
    with pytest.raises(TargetError, match="activations"):
        parse_target(quant_toml(activations="int4"), "x.toml")
    with pytest.raises(TargetError, match="static-int8"):
        parse_target(quant_toml(mode="dynamic-int8", full_integer=True), "x.toml")
    with pytest.raises(TargetError, match="int8 mode"):
        parse_target(quant_toml(mode="fp16", fallback_max_layers=2), "x.toml")
    with pytest.raises(TargetError, match="calibration_size"):
        parse_target(quant_toml(calibration_size=0), "x.toml")


def test_android_npu_profile_is_full_integer_static():
    t = load_target("android-npu")
    assert t.formats == ("tflite",)
    assert t.quantize.mode == "static-int8" and t.quantize.full_integer and t.quantize.activations == "int8"
    assert t.quantize.fallback_max_layers > 0


# -- calibration and exclusion -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def static_bundle(tmp_path_factory, tiny_model, tiny_data, cache_dir) -> Path:
    tmp = tmp_path_factory.mktemp("static")
    toml = quant_toml(exclude=["encoder.0.attention.self.query", "encoder.1.output"])
    return build(tmp, "static", toml, tiny_model, tiny_data, cache_dir)


def _onnx_float_matmuls(path: Path) -> tuple[set, set]:
    """(MatMul nodes fed by DequantizeLinear, i.e. int8, MatMul nodes with float inputs)."""
    import onnx

    g = onnx.load(str(path)).graph
    dq_out = {o for n in g.node if n.op_type == "DequantizeLinear" for o in n.output}
    q, f = set(), set()
    for n in g.node:
        if n.op_type == "MatMul":
            (q if all(i in dq_out for i in n.input) else f).add(onnx_layer(n.name))
    return q, f


def test_static_int8_loads_in_runtime_and_stays_close_to_fp32(static_bundle):
    import edgepack

    r = report(static_bundle)
    for fmt in ("onnx", "tflite"):
        assert r["metrics"]["formats"][fmt]["vs_student_fp32"]["cosine_min"] > 0.99
        emb = edgepack.load_bundle(static_bundle, format=fmt).embed(list(TINY_SENTENCES[:4]))
        assert emb.shape[0] == 4 and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=0.05)
    manifest = json.loads((static_bundle / "edgepack.json").read_text())
    assert {a["precision"] for a in manifest["artifacts"]} == {"int8"}
    assert {a["quantization"] for a in manifest["artifacts"]} == {"static-int8"}


def test_static_onnx_quantises_activations_but_not_sensitive_ops(static_bundle):
    import onnx

    g = onnx.load(str(static_bundle / "model.onnx")).graph
    ops = {n.op_type for n in g.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # QDQ: activations are quantised, not only weights
    dq_out = {o for n in g.node if n.op_type == "DequantizeLinear" for o in n.output}
    # LayerNorm / Softmax / GELU (Erf) keep float inputs by default (optimum#151)
    for n in g.node:
        if n.op_type in ("LayerNormalization", "Softmax", "Erf"):
            assert not any(i in dq_out for i in n.input), n.name


def test_exclusion_list_keeps_named_layers_float_in_onnx(static_bundle):
    quantised, floating = _onnx_float_matmuls(static_bundle / "model.onnx")
    assert "encoder.0.attention.self.query" in floating
    assert "encoder.1.output.dense" in floating
    assert {"encoder.0.attention.self.key", "encoder.1.attention.self.query", "encoder.0.output.dense"} <= quantised
    kept = report(static_bundle)["quantize"]["exclude"]
    assert kept == ["encoder.0.attention.self.query", "encoder.1.output"]


def test_exclusion_list_keeps_named_layers_float_in_tflite(static_bundle):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(static_bundle / "model.tflite"))
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    dtype_of = {}
    for op in interp._get_ops_details():
        if op["op_name"] == "FULLY_CONNECTED":
            layer = tflite_layer(tensors[op["outputs"][0]]["name"])
            dtype_of[layer] = tensors[op["inputs"][0]]["dtype"].__name__
    assert dtype_of["encoder.0.attention.self.query"] == "float32"
    assert dtype_of["encoder.1.output.dense"] == "float32"
    assert dtype_of["encoder.0.attention.self.key"] == "int8"
    assert dtype_of["encoder.1.intermediate.dense"] == "int8"


def test_calibration_uses_training_texts_not_validation(tiny_model, tiny_data, cache_dir, tmp_path):
    """Held-out texts must stay unseen by calibration, or the parity gate flatters static int8."""
    import dataclasses

    from edgepack.config import BuildOptions
    from edgepack.context import BuildContext
    from edgepack.quant import calibrate
    from edgepack.stages import data, teacher
    from edgepack.student import teacher_itself
    from edgepack.tokenizer import load_tokenizer

    opts = BuildOptions(target="x.toml", model=str(tiny_model), data=(str(tiny_data),))
    ctx = BuildContext(options=opts, target=parse_target(quant_toml(calibration_size=3), "x.toml"),
                       work_dir=cache_dir, staging_dir=tmp_path, out_dir=tmp_path / "o")
    ctx = data.run(teacher.run(ctx))
    ctx = dataclasses.replace(ctx, student=teacher_itself(ctx.teacher))
    calib = calibrate.calibration_set(ctx)
    tok = load_tokenizer(tiny_model)
    expected = calibrate.encode_texts(tok, ctx.texts.train[:3], calib.max_length)
    assert calib.ids == expected.ids and len(calib.ids) == 3
    val_ids = set(calibrate.encode_texts(tok, ctx.texts.validation, calib.max_length).ids)
    assert not val_ids & set(calib.ids)


# -- every mode x format round trip ----------------------------------------------------------------------

@pytest.mark.parametrize("mode,precision", [("dynamic-int8", "int8"), ("static-int8", "int8"), ("fp16", "fp16"), ("none", "fp32")])
def test_every_mode_and_format_round_trips_through_build_and_check(mode, precision, tmp_path, tiny_model, tiny_data, cache_dir):
    import edgepack

    out = build(tmp_path, mode, quant_toml(mode=mode), tiny_model, tiny_data, cache_dir)
    result = check_bundle(out)
    assert result.passed, [(c.name, c.message) for c in result.failures]
    manifest = json.loads((out / "edgepack.json").read_text())
    assert {a["format"] for a in manifest["artifacts"]} == {"onnx", "tflite"}
    assert {a["precision"] for a in manifest["artifacts"]} == {precision}
    fp32 = {}
    for fmt in ("onnx", "tflite"):
        assert report(out)["metrics"]["formats"][fmt]["vs_student_fp32"]["cosine_min"] > 0.99
        fp32[fmt] = edgepack.load_bundle(out, format=fmt).embed(list(TINY_SENTENCES[:3]))
    # the two formats agree with each other, whatever the mode
    assert (fp32["onnx"] * fp32["tflite"]).sum(1).min() > 0.99
    if mode == "fp16":  # ai-edge-quantizer has no fp16 recipe; its FLOAT_CASTING stores fp16 weights
        from ai_edge_litert.interpreter import Interpreter

        dtypes = {t["dtype"].__name__ for t in Interpreter(model_path=str(out / "model.tflite")).get_tensor_details()}
        assert "float16" in dtypes


def test_android_npu_target_builds_full_integer(tmp_path, tiny_model, tiny_data, cache_dir):
    import edgepack
    from ai_edge_litert.interpreter import Interpreter

    out = tmp_path / "npu"
    edgepack.build(target="android-npu", model=str(tiny_model), data=(str(tiny_data),), out=out, cache_dir=cache_dir)
    assert check_bundle(out).passed
    manifest = json.loads((out / "edgepack.json").read_text())
    [tfl] = [a for a in manifest["artifacts"] if a["format"] == "tflite"]
    assert tfl["buckets"] == [64, 128]  # static shapes, one signature each
    interp = Interpreter(model_path=str(out / "model.tflite"))
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    int8_ops = {op["op_name"] for op in interp._get_ops_details()
                if any(tensors[i]["dtype"].__name__ == "int8" for i in op["outputs"] if i >= 0)}
    # beyond matmuls: softmax, the GELU and the LayerNorm arithmetic run in int8 too
    assert {"FULLY_CONNECTED", "BATCH_MATMUL", "SOFTMAX"} <= int8_ops
    assert int8_ops & {"GELU", "RSQRT", "MEAN", "SQUARED_DIFFERENCE"}
