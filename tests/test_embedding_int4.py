"""4-bit word embeddings (`[quantize] embedding_bits = 4`, issue #11): only the word-embedding table is
stored in int4 blocks (ONNX GatherBlockQuantized, TFLite blockwise EMBEDDING_LOOKUP); everything else
keeps the mode's int8. Tiny seeded models only: the plain tiny BERT through build + check, and a tiny
BERT whose word embeddings are factorised (lookup -> project, as the issue #11 student) through the
quantiser directly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

from edgepack.check import check_bundle
from edgepack.cli import main
from edgepack.errors import TargetError
from edgepack.inspect import inspect_bundle
from edgepack.quant import quantize
from edgepack.runtime import edgepack_runtime as rt
from edgepack.targets import QuantizeSpec, parse_target
from edgepack.testing import build_from_toml, tiny_target_toml


def int4_toml(formats=("onnx", "tflite"), mode="dynamic-int8", extra="embedding_bits = 4", **budget) -> str:
    text = tiny_target_toml(formats=formats, mode=mode, **budget)
    return text.replace(f'mode = "{mode}"\n', f'mode = "{mode}"\n{extra}\n')


# -- the profile -------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode,extra,message", [
    ("dynamic-int8", "embedding_bits = 5", "'quantize.embedding_bits' must be 8 or 4"),
    ("dynamic-int8", "embedding_bits = 4\nembedding_block_size = 48", "'quantize.embedding_block_size' must be 32, 64, 128 or 256"),
    ("static-int8", "embedding_bits = 4", "needs mode = \"dynamic-int8\""),
    ("fp16", "embedding_bits = 4", "needs mode = \"dynamic-int8\""),
    ("none", "embedding_bits = 4", "needs mode = \"dynamic-int8\""),
])
def test_bad_embedding_settings_are_refused(mode, extra, message):
    with pytest.raises(TargetError, match=message.replace("(", r"\(")) as exc:
        parse_target(int4_toml(mode=mode, extra=extra), "t.toml")
    assert "\n" not in exc.value.message and exc.value.message.startswith("t.toml: ")


def test_defaults_keep_todays_int8():
    spec = parse_target(tiny_target_toml(), "t.toml").quantize
    assert (spec.embedding_bits, spec.embedding_block_size) == (8, 32)
    assert quantize.precision_of(spec) == "int8" and quantize.runtime_requirements("onnx", spec) == []


def test_bad_value_is_one_error_line_and_exit_2(tmp_path, tiny_model, tiny_data):
    target = tmp_path / "bad.toml"
    target.write_text(int4_toml(extra="embedding_bits = 2"))
    result = CliRunner().invoke(main, ["build", "--target", str(target), "--model", str(tiny_model),
                                       "--data", str(tiny_data), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [f"error: {target}: 'quantize.embedding_bits' must be 8 or 4"]
    assert not (tmp_path / "out").exists()


# -- a whole build on the tiny model -----------------------------------------------------------------

@pytest.fixture(scope="module")
def int4_bundle(tmp_path_factory, tiny_model, tiny_data, cache_dir) -> Path:
    tmp = tmp_path_factory.mktemp("int4")
    return build_from_toml(tmp, "int4", int4_toml(min_cosine_vs_student=0.99), tiny_model, tiny_data, cache_dir)


def manifest(bundle: Path) -> dict:
    return json.loads((bundle / "edgepack.json").read_text())


def test_int4_bundle_passes_its_gates_and_check(int4_bundle):
    report = json.loads((int4_bundle / "report.json").read_text())
    assert report["metrics"]["gates"]["passed"]
    for fmt in ("onnx", "tflite"):
        assert report["metrics"]["formats"][fmt]["vs_student_fp32"]["cosine_min"] >= 0.99
    assert check_bundle(int4_bundle).passed
    assert "word embeddings int4, blocks of 32" in (int4_bundle / "report.md").read_text()


def test_onnx_has_one_int4_gather_for_the_word_table_only(int4_bundle):
    graph = onnx.load(str(int4_bundle / "model.onnx")).graph
    inits = {i.name: i for i in graph.initializer}
    gbq = [n for n in graph.node if n.op_type == "GatherBlockQuantized"]
    assert len(gbq) == 1 and gbq[0].domain == "com.microsoft"
    node = gbq[0]
    assert node.input[1] == "input_ids"
    assert inits[node.input[0]].data_type == onnx.TensorProto.INT4
    attrs = {a.name: a.i for a in node.attribute}
    assert attrs["block_size"] == 32 and attrs["quantize_axis"] == 1 and attrs["gather_axis"] == 0
    # position and token-type tables keep 8 bits (onnxruntime's dynamic pass stores Gather tables as uint8)
    tables = [inits[n.input[0]] for n in graph.node if n.op_type == "Gather" and n.input[0] in inits]
    assert tables and all(t.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8) for t in tables)
    assert {"MatMulInteger", "DynamicQuantizeLinear"} <= {n.op_type for n in graph.node}


def _tflite_lookup_tables(path: Path):
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    by_op = {}
    for sg in model.subgraphs:  # one per signature (bucket); they share the weight buffers
        for op in sg.operators:
            code = model.operatorCodes[op.opcodeIndex]
            name = names[max(code.builtinCode, code.deprecatedBuiltinCode)]
            if len(op.inputs) > 1:
                by_op.setdefault(name, []).append(sg.tensors[op.inputs[1]])
    return by_op, schema


def test_tflite_word_lookup_is_int4_blockwise_and_matrices_stay_int8(int4_bundle):
    for art in manifest(int4_bundle)["artifacts"]:
        if art["format"] != "tflite":
            continue
        by_op, schema = _tflite_lookup_tables(int4_bundle / art["path"])
        lookups = by_op["EMBEDDING_LOOKUP"]
        tables = [t for t in lookups if t.type == schema.TensorType.INT4]
        assert len(tables) == len(art["signatures"]) == 2
        assert len({t.buffer for t in tables}) == 1  # one int4 table shared by both signatures
        # the position and segment lookups (computed ids, modeling.for_signatures) stay int8
        assert {t.type for t in lookups if t.type != schema.TensorType.INT4} == {schema.TensorType.INT8}
        table = tables[0]
        assert table.quantization.detailsType == schema.QuantizationDetails.BlockwiseQuantization
        assert table.quantization.details.blockSize == 32
        assert {t.type for t in by_op["FULLY_CONNECTED"]} == {schema.TensorType.INT8}


def test_int4_files_are_smaller_than_int8(int4_bundle, tiny_bundle_ro):
    # same tiny model, data, buckets and fp32 graphs (cached); only embedding_bits differs
    sizes = {b: {a["path"]: a["bytes"] for a in manifest(b)["artifacts"]} for b in (int4_bundle, tiny_bundle_ro)}
    assert sizes[int4_bundle].keys() == sizes[tiny_bundle_ro].keys()
    for path, size in sizes[int4_bundle].items():
        assert size < sizes[tiny_bundle_ro][path], path


def test_manifest_and_inspect_describe_the_int4_table(int4_bundle, tiny_bundle_ro):
    arts = manifest(int4_bundle)["artifacts"]
    assert {a["precision"] for a in arts} == {"int8 (embeddings int4)"}
    needs = {a["format"]: {(r["runtime"], r["min_version"]) for r in a["requires"]} for a in arts}
    assert needs == {"onnx": {("onnxruntime", "1.20.0")}, "tflite": {("litert", "1.4.0")}}
    info, before = inspect_bundle(int4_bundle), inspect_bundle(tiny_bundle_ro)
    for new, old in zip(info["artifacts"], before["artifacts"]):
        w = new["weights"]
        assert w["dtypes"].get("int4", 0) > 0
        # the table's bytes are counted packed (two values a byte), its block scales with the embeddings
        assert w["parts"]["embeddings"] < old["weights"]["parts"]["embeddings"]
        assert w["parts"]["other"] <= old["weights"]["parts"]["other"]
        assert w["quantised_share_params"] > 0.85
    text = CliRunner().invoke(main, ["inspect", str(int4_bundle)]).output
    assert "needs: onnxruntime >= 1.20.0" in text and "needs: ai-edge-litert >= 1.4.0" in text


def test_runtime_refuses_an_interpreter_older_than_the_manifest_needs(int4_bundle):
    m = manifest(int4_bundle)
    for a in m["artifacts"]:
        for r in a["requires"]:
            r["min_version"] = "999.0"
    for fmt, package in (("onnx", "onnxruntime"), ("tflite", "ai-edge-litert")):
        with pytest.raises(rt.BackendUnavailable, match=f"needs {package} >= 999.0"):
            rt.load_bundle(int4_bundle, format=fmt, manifest=m, verify=False)
    assert rt._version_tuple("1.20.0") < rt._version_tuple("1.22.0rc1") < rt._version_tuple("1.32.0+cpu")


def test_fallback_requantises_with_int4_embeddings(tmp_path, tiny_model, tiny_data, cache_dir, monkeypatch):
    """The accuracy-aware fallback re-quantises with exclusions: the int4 option must hold in every trial,
    and the word table is int4 exactly when the trial does not keep that layer in float."""
    from edgepack.errors import GateFailed

    calls = []
    real = quantize.quantize_onnx

    def spy(src, dst, mode, per_channel, exclude=(), *args, **kw):
        real(src, dst, mode, per_channel, exclude, *args, **kw)
        if "embedding_bits" in kw:  # what quantize_file asked for (not the int8 pass it runs next)
            word = quantize.onnx_word_embedding_gather(onnx.load(str(src)).graph)
            kept_float = word in quantize.onnx_nodes_matching(src, exclude)
            has_int4 = "GatherBlockQuantized" in {n.op_type for n in onnx.load(str(dst)).graph.node}
            calls.append((kw["embedding_bits"], kept_float, has_int4))

    monkeypatch.setattr(quantize, "quantize_onnx", spy)
    # a gate no int8 graph meets, so the fallback ranks layers and re-quantises
    toml = int4_toml(formats=("onnx",), extra="embedding_bits = 4\nfallback_max_layers = 1", min_cosine_vs_student=0.9999999)
    try:
        out = build_from_toml(tmp_path, "fb", toml, tiny_model, tiny_data, cache_dir)
        assert "fallback" in json.loads((out / "report.json").read_text())["metrics"]
    except GateFailed:
        pass
    assert len(calls) > 3  # the build, the ranking trials, the re-quantisation with the kept layer
    assert {bits for bits, _, _ in calls} == {4}
    assert all(has_int4 == (not kept_float) for _, kept_float, has_int4 in calls)
    assert sum(has_int4 for _, _, has_int4 in calls) > len(calls) // 2


# -- a factorised word embedding (lookup -> project), quantised directly ------------------------------

class LowRankEmbedding(torch.nn.Module):
    """As issue #11's student: Embedding(vocab, rank) then a bias-free Linear(rank, hidden)."""

    def __init__(self, vocab: int, rank: int, hidden: int):
        super().__init__()
        self.lookup = torch.nn.Embedding(vocab, rank)
        self.project = torch.nn.Linear(rank, hidden, bias=False)

    def forward(self, input_ids):
        return self.project(self.lookup(input_ids))


@pytest.fixture(scope="module")
def factorised_fp32(tmp_path_factory) -> dict:
    from transformers import BertConfig, BertModel

    from edgepack.export import export_onnx, export_tflite
    from edgepack.modeling import wrap

    torch.manual_seed(0)
    config = BertConfig(vocab_size=300, hidden_size=64, num_hidden_layers=1, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=64)
    model = BertModel(config).eval()
    model.embeddings.word_embeddings = LowRankEmbedding(300, 32, 64)
    head = wrap(model, "sentence-embedding", "bert").eval()
    tmp = tmp_path_factory.mktemp("factorised")
    export_onnx(head, tmp / "fp32.onnx", "sentence-embedding")
    export_tflite(head, tmp / "fp32.tflite", (16, 32))
    ids = np.random.RandomState(0).randint(1, 300, (6, 16))
    return {"dir": tmp, "onnx": tmp / "fp32.onnx", "tflite": tmp / "fp32.tflite", "ids": ids}


def _run(fmt: str, path: Path, ids: np.ndarray) -> np.ndarray:
    if fmt == "onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return sess.run(None, {"input_ids": ids.astype(np.int64), "attention_mask": np.ones_like(ids, dtype=np.int64)})[0]
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner("seq16")
    return np.concatenate([next(iter(runner(input_ids=row[None].astype(np.int32),
                                            attention_mask=np.ones((1, len(row)), np.int32)).values())) for row in ids])


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_factorised_lookup_table_goes_int4_and_keeps_the_output(fmt, factorised_fp32):
    src, ids, out = factorised_fp32[fmt], factorised_fp32["ids"], factorised_fp32["dir"]
    ref = _run(fmt, src, ids)
    sizes = {}
    for bits in (8, 4):
        dst = out / f"e{bits}.{fmt}"
        quantize.quantize_file(src, dst, fmt, QuantizeSpec(embedding_bits=bits), buckets=(16, 32))
        got = _run(fmt, dst, ids)
        cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
        assert cos.min() > 0.99, (bits, cos)
        sizes[bits] = dst.stat().st_size
    assert sizes[4] < sizes[8]
    if fmt == "onnx":
        graph = onnx.load(str(out / "e4.onnx")).graph
        [gbq] = [n for n in graph.node if n.op_type == "GatherBlockQuantized"]
        assert "/word_embeddings/lookup/" in gbq.name
    else:
        by_op, schema = _tflite_lookup_tables(out / "e4.tflite")
        assert [t.type for t in by_op["EMBEDDING_LOOKUP"]] == [schema.TensorType.INT4] * 2


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_excluded_word_embeddings_stay_float_and_bad_block_is_refused(fmt, factorised_fp32):
    src, out = factorised_fp32[fmt], factorised_fp32["dir"]
    spec = QuantizeSpec(embedding_bits=4)
    dst = out / f"excluded.{fmt}"
    quantize.quantize_file(src, dst, fmt, spec, exclude=("word_embeddings",), buckets=(16, 32))
    if fmt == "onnx":
        graph = onnx.load(str(dst)).graph
        inits = {i.name: i.data_type for i in graph.initializer}
        assert "GatherBlockQuantized" not in {n.op_type for n in graph.node}
        [word] = [n for n in graph.node if n.op_type == "Gather" and "word_embeddings" in n.name]
        assert inits[word.input[0]] == onnx.TensorProto.FLOAT
    else:
        by_op, schema = _tflite_lookup_tables(dst)
        assert [t.type for t in by_op["EMBEDDING_LOOKUP"]] == [schema.TensorType.FLOAT32] * 2
    # the rank-32 table cannot be cut into blocks of 64
    with pytest.raises(TargetError, match="embedding_block_size' 64 does not divide the word-embedding width 32"):
        quantize.quantize_file(src, out / f"bad.{fmt}", fmt, QuantizeSpec(embedding_bits=4, embedding_block_size=64), buckets=(16, 32))


# -- one int4 grid for both formats and for training (quant/int4.py) ---------------------------------

def _stored_tables(tmp_path: Path, table: np.ndarray) -> dict:
    """The word table each format's int4 file holds, read back through its own runtime (every row looked up)."""
    import litert_torch
    from ai_edge_litert.interpreter import Interpreter
    from onnx import TensorProto, helper, numpy_helper

    import onnxruntime as ort

    tmp_path.mkdir(parents=True, exist_ok=True)
    rows, width = table.shape
    graph = helper.make_graph([helper.make_node("Gather", ["table", "input_ids"], ["out"], name="embeddings.word_embeddings")], "g",
                              [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [None])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, width])], [numpy_helper.from_array(table, "table")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "f.onnx")
    quantize.quantize_onnx_word_embeddings_int4(tmp_path / "f.onnx", tmp_path / "q.onnx", 32)
    got = {"onnx": ort.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"]).run(None, {"input_ids": np.arange(rows)})[0]}

    class Lookup(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.word_embeddings = torch.nn.Embedding(rows, width, _weight=torch.tensor(table))

        def forward(self, input_ids):
            return self.word_embeddings(input_ids)

    ids = torch.arange(rows, dtype=torch.int32)[None]
    litert_torch.signature("all", Lookup().eval(), sample_kwargs={"input_ids": ids}).convert().export(str(tmp_path / "f.tflite"))
    quantize.quantize_tflite(tmp_path / "f.tflite", tmp_path / "q.tflite", "dynamic-int8", embedding_bits=4, embedding_block_size=32)
    runner = Interpreter(model_path=str(tmp_path / "q.tflite")).get_signature_runner("all")
    got["tflite"] = next(iter(runner(input_ids=ids.numpy()).values()))[0]
    return got


def test_both_formats_store_the_word_table_on_one_int4_grid(tmp_path):
    """ONNX and TFLite store the same int4 table, int4.snap's: onnxruntime's own grid (the signed extreme / -8) differed
    from LiteRT's (max / 7, bfloat16 scales), so a table put on one came back changed from the other. A table already on
    the grid (a frozen student lookup, distil.py) comes back exactly."""
    from edgepack.quant import int4

    table = (np.random.default_rng(0).standard_normal((40, 64)) * 0.05).astype(np.float32)
    on_grid = int4.snap(table, 32)
    assert 0 < np.abs(on_grid - table).mean() < 0.01 and np.array_equal(int4.snap(on_grid, 32), on_grid)
    for fmt, stored in _stored_tables(tmp_path / "float", table).items():
        assert np.array_equal(stored, on_grid), (fmt, np.abs(stored - on_grid).max())
    for fmt, stored in _stored_tables(tmp_path / "snapped", on_grid).items():
        assert np.array_equal(stored, on_grid), (fmt, np.abs(stored - on_grid).max())
    q, scales = int4.blocks(table, 32)
    assert q.min() >= -7 and q.max() <= 7 and scales.shape == (40, 2) and int4.pack(np.array([[1, -1]], np.int8)) == bytes([0xF1])
