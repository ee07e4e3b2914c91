"""Issue #13: RoBERTa, XLM-RoBERTa and MPNet teachers (and a RoBERTa classifier) end to end, with byte-level
BPE and SentencePiece Unigram tokenizers trained in code on the built-in corpus; sentence-transformers
pooling (mean, CLS, max), Dense and Normalize modules; the steps a family or tokenizer cannot take.

Each family builds a teacher bundle with the real `x86-64` profile and a distilled student with a tiny
profile shaped like `android-arm64` (TFLite + ONNX, dynamic int8, int4 word embeddings, a measured layer
subset, low-rank embeddings, head and FFN pruning); both pass `check` and fail it on a changed byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import edgepack
from edgepack.cli import main

# android-arm64's shape at tiny scale: its formats, quantisation and student features, tiny sizes.
ANDROID_TINY = """
name = "android-arm64-tiny"
formats = ["tflite", "onnx"]
default_format = "tflite"
threads = 1
[shapes]
sequence_buckets = [16, 32]
[quantize]
mode = "dynamic-int8"
per_channel = true
embedding_bits = 4
[student]
strategy = "distil"
layers = 1
layer_choice = "measured"
embedding_rank = 32
heads_keep = {heads_keep}
ffn_keep = 0.5
steps = 20
eval_every = 10
batch_size = 8
[budget]
max_size_mb = 8
min_mean_cosine_vs_teacher = 0.3
min_cosine_vs_student = 0.95
min_agreement_vs_teacher = 0.3
min_agreement_vs_student = 0.9
"""

FAMILIES = ("roberta", "xlm-roberta", "mpnet", "bert", "distilbert")
CLASSIFIERS = ("roberta", "xlm-roberta", "mpnet")
BUNDLES = FAMILIES + tuple(f"{f}-classifier" for f in CLASSIFIERS)
TOKENIZER = {"roberta": "BPE", "xlm-roberta": "Unigram", "mpnet": "BPE", "bert": "WordPiece", "distilbert": "WordPiece"}


def android_tiny(tmp_path, heads_keep=0.5) -> str:
    path = tmp_path / f"android-tiny-{heads_keep}.toml"
    path.write_text(ANDROID_TINY.format(heads_keep=heads_keep), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="session")
def family_models(session_dir):
    from edgepack.testing import tiny_model

    models = {f: tiny_model(session_dir / f"tiny-{f}", f, hidden=64) for f in FAMILIES}
    for family in CLASSIFIERS:
        models[f"{family}-classifier"] = tiny_model(session_dir / f"tiny-{family}-cls", family, task="text-classification", hidden=64)
    return models


@pytest.fixture(scope="session")
def family_bundles(session_dir, family_models, cache_dir, tiny_labelled_data):
    """(teacher bundle for x86-64, student bundle for android-arm64-tiny) per family, built once."""
    out = {}
    for name, model in family_models.items():
        data = (str(tiny_labelled_data),) if name.endswith("classifier") else ()
        # MPNet cannot prune heads (test_mpnet_head_pruning_is_refused_in_one_line); FFN pruning it can.
        heads = 1.0 if name.startswith("mpnet") else 0.5
        teacher = session_dir / f"bundle-{name}-x86"
        edgepack.build(target="x86-64", model=str(model), data=data, out=teacher, cache_dir=cache_dir)
        student = session_dir / f"bundle-{name}-android"
        edgepack.build(target=android_tiny(session_dir, heads), model=str(model), data=data, out=student, cache_dir=cache_dir)
        out[name] = (teacher, student)
    return out


def check(bundle) -> int:
    return CliRunner().invoke(main, ["check", str(bundle)]).exit_code


@pytest.mark.parametrize("name", BUNDLES)
def test_family_builds_teacher_and_student_bundles_that_pass_check_and_fail_on_a_changed_byte(name, family_bundles, tmp_path):
    import shutil

    for bundle in family_bundles[name]:
        m = json.loads((bundle / "edgepack.json").read_text())
        assert check(bundle) == 0, bundle
        copy = tmp_path / bundle.name
        shutil.copytree(bundle, copy)
        model = copy / "model.onnx"
        data = bytearray(model.read_bytes())
        data[len(data) // 2] ^= 0xFF
        model.write_bytes(bytes(data))
        assert check(copy) == 1
        assert m["tokenizer"]["type"] == TOKENIZER[name.split("-classifier")[0]]
        assert m["task"] == ("text-classification" if name.endswith("classifier") else "sentence-embedding")


@pytest.mark.parametrize("name", BUNDLES)
def test_student_uses_every_student_feature_the_family_supports(name, family_bundles):
    m = json.loads((family_bundles[name][1] / "edgepack.json").read_text())
    s = m["student"]
    assert s["strategy"] == "distil" and len(s["teacher_layers_kept"]) == 1  # a measured layer subset
    assert s["embedding_rank"] == 32 and s["ffn"] == 32  # low-rank table, FFN 64 -> 32
    assert s["heads_per_layer"] == ([4] if name.startswith("mpnet") else [2])
    assert {a["format"] for a in m["artifacts"]} == {"onnx", "tflite"}
    assert {a["precision"] for a in m["artifacts"]} == {"int8 (embeddings int4)"}


@pytest.mark.parametrize("name", FAMILIES)
def test_bundle_runs_through_the_python_runtime_like_the_teacher(name, family_bundles, family_models):
    """The teacher bundle's int8 ONNX against the torch teacher, tokenised by the bundle's runtime."""
    from edgepack.modeling import load_hf_model, run_torch, wrap
    from edgepack.teacher import inspect_model_dir
    from edgepack.tokenizer import load_tokenizer

    texts = ["The movie was really good.", "Ünïcödé 東京 🙂 text", "a" * 300]
    bundle = edgepack.load_bundle(family_bundles[name][0])
    got = bundle(texts)
    t = inspect_model_dir(family_models[name])
    ref = run_torch(wrap(load_hf_model(t.path, t.task), t.task, t.family, t.pooling, t.normalize), load_tokenizer(t.path),
                    texts, bundle.max_length)
    cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() > 0.98, cos


@pytest.mark.parametrize("family", FAMILIES)
def test_truncated_positions_keep_the_outputs(family, family_models):
    """RoBERTa-style position ids start at padding_idx + 1: a table cut to max_length real positions
    keeps those rows too, so a full-length input gives the teacher's output exactly."""
    from edgepack.families import position_offset
    from edgepack.modeling import load_hf_model, wrap
    from edgepack.student.layers import layer_subset, truncate_positions

    teacher = load_hf_model(family_models[family], "sentence-embedding")
    student = layer_subset(teacher, family, [0, 1])
    truncate_positions(student, family, 40)
    # RoBERTa, XLM-R, MPNet: 40 positions after row 0 and <pad> (id 1); BERT, DistilBERT: 40 rows.
    offset = position_offset(family, teacher.config.to_dict())
    assert offset == (2 if TOKENIZER[family] != "WordPiece" else 0)
    assert getattr(student.config, "max_position_embeddings") == 40 + offset
    ids = torch.randint(5, 900, (2, 40))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        a = wrap(teacher, "sentence-embedding", family)(ids, mask)
        b = wrap(student, "sentence-embedding", family)(ids, mask)
    torch.testing.assert_close(a, b)


def test_mpnet_head_pruning_is_refused_in_one_line(family_models, tmp_path, tiny_data):
    result = CliRunner().invoke(main, ["build", "--target", android_tiny(tmp_path, 0.5), "--model", str(family_models["mpnet"]),
                                       "--data", str(tiny_data), "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 2
    lines = [x for x in result.output.splitlines() if x.startswith("error")]
    assert lines == ["error: head pruning is not supported for MPNet models: its relative position bias is shared by all layers "
                     "and has one column per head"]
    assert "Traceback" not in result.output


def test_vocabulary_pruning_of_a_wordpiece_mpnet_keeps_its_padding_id(tmp_path, tiny_data, cache_dir):
    """WordPiece vocabularies can be pruned in any family; fairseq's specials (and <pad> at id 1, where
    MPNet counts positions from) keep their ids."""
    from edgepack.testing import tiny_model

    model = tiny_model(tmp_path / "m", "mpnet", tokenizer="wordpiece", hidden=64)
    target = tmp_path / "vp.toml"
    target.write_text(ANDROID_TINY.format(heads_keep=1.0).replace("[student]", "[student]\nvocab_prune = true\nvocab_size = 600"))
    out = tmp_path / "out"
    edgepack.build(target=str(target), model=str(model), data=(str(tiny_data),), out=out, cache_dir=cache_dir)
    m = json.loads((out / "edgepack.json").read_text())
    assert m["tokenizer"]["type"] == "WordPiece" and m["tokenizer"]["vocab_size"] == 600 < 1000
    assert (m["tokenizer"]["cls_id"], m["tokenizer"]["pad_id"], m["tokenizer"]["sep_id"]) == (0, 1, 2)
    assert check(out) == 0


@pytest.mark.parametrize("family,kind", [("roberta", "BPE"), ("xlm-roberta", "Unigram")])
def test_vocabulary_pruning_is_refused_for_bpe_and_unigram(family, kind, family_models, tmp_path, tiny_data):
    target = tmp_path / "vp.toml"
    target.write_text(ANDROID_TINY.format(heads_keep=1.0).replace("[student]", "[student]\nvocab_prune = true"))
    result = CliRunner().invoke(main, ["build", "--target", str(target), "--model", str(family_models[family]),
                                       "--data", str(tiny_data), "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 2
    lines = [x for x in result.output.splitlines() if x.startswith("error")]
    assert len(lines) == 1 and lines[0].startswith(f"error: vocabulary pruning is not supported for {kind} tokenizers: "), lines


def test_unknown_architecture_names_every_supported_family(tmp_path):
    from edgepack.testing import tiny_bert

    model = tiny_bert(tmp_path / "m")
    cfg = json.loads((model / "config.json").read_text())
    cfg["model_type"] = "gpt2"
    (model / "config.json").write_text(json.dumps(cfg))
    result = CliRunner().invoke(main, ["build", "--target", "x86-64", "--model", str(model), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "unsupported architecture 'gpt2' (supported: BERT, MiniLM, DistilBERT, RoBERTa, XLM-RoBERTa, MPNet)" in result.output


# ---- sentence-transformers pooling, Dense and Normalize, against sentence-transformers itself ----

FP32_TOML = """
name = "fp32-test"
formats = ["onnx", "tflite"]
[shapes]
sequence_buckets = [16, 64]
[quantize]
mode = "none"
[budget]
min_cosine_vs_teacher = 0.999
"""

ST_TEXTS = ["The movie was really good.", "remind me to call home tomorrow", "Ünïcödé 東京 🙂", "a short one",
            "I bought the electric kettle after reading lots of reviews, and it works perfectly."]


def st_texts() -> list[str]:
    """The short cases and 100 lines of the built-in corpus (some longer than the 16-token bucket, none
    truncated below sentence-transformers' 64 tokens: the largest bucket, 64, is the bundle's limit)."""
    from edgepack.testing import corpus_lines

    return ST_TEXTS + corpus_lines()[300:400]


@pytest.mark.parametrize("family,pooling,dense,normalize", [
    ("mpnet", "mean", 24, True),   # all-mpnet-base-v2's shape, plus a Dense projection
    ("roberta", "cls", 16, True),
    ("xlm-roberta", "max", 0, True),
    ("roberta", "mean", 48, False),
])
def test_bundle_matches_sentence_transformers(family, pooling, dense, normalize, tmp_path, tiny_data, cache_dir):
    """The fp32 bundle (ONNX and TFLite) gives what sentence-transformers gives for the same model
    directory: pooling mode, Dense (Tanh) projection and Normalize all honoured (cosine >= 0.999)."""
    from sentence_transformers import SentenceTransformer

    from edgepack.testing import tiny_model

    model = tiny_model(tmp_path / "st", family, pooling=pooling, dense=dense, normalize=normalize)
    texts = st_texts()
    expected = SentenceTransformer(str(model), device="cpu").encode(texts, convert_to_numpy=True)
    assert expected.shape[1] == (dense or 32)
    target = tmp_path / "fp32.toml"
    target.write_text(FP32_TOML)
    out = tmp_path / "bundle"
    edgepack.build(target=str(target), model=str(model), data=(str(tiny_data),), out=out, cache_dir=cache_dir)
    m = json.loads((out / "edgepack.json").read_text())
    assert m["output_dim"] == (dense or 32) and m["pooling"]["mode"] == pooling and m["pooling"]["normalize"] is normalize
    for fmt in ("onnx", "tflite"):
        got = edgepack.load_bundle(out, format=fmt)(texts)
        cos = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
        assert cos.min() >= 0.999, (fmt, cos.min())
        np.testing.assert_allclose(got, expected, atol=1e-5)  # measured: max |difference| ~2e-7
        if normalize:
            np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("family,pooling,dense", [("mpnet", "mean", 24), ("xlm-roberta", "max", 0), ("roberta", "cls", 8)])
def test_a_model_saved_by_sentence_transformers_5_builds_the_same(family, pooling, dense, tmp_path, tiny_data, cache_dir):
    """sentence-transformers 5.x writes new module type names (`...modules.pooling.Pooling`) and
    `"pooling_mode": "max"` instead of the `pooling_mode_*_tokens` flags: read the same way."""
    from sentence_transformers import SentenceTransformer

    from edgepack.teacher import inspect_model_dir
    from edgepack.testing import tiny_model

    st = SentenceTransformer(str(tiny_model(tmp_path / "m", family, pooling=pooling, dense=dense)), device="cpu")
    st.save(str(tmp_path / "saved"))
    types = [m["type"] for m in json.loads((tmp_path / "saved" / "modules.json").read_text())]
    assert not any(t.startswith("sentence_transformers.models.") for t in types), types  # the 5.x layout
    t = inspect_model_dir(tmp_path / "saved")
    assert (t.pooling, t.normalize, len(t.dense)) == (pooling, True, 1 if dense else 0)
    target = tmp_path / "fp32.toml"
    target.write_text(FP32_TOML)
    out = tmp_path / "bundle"
    edgepack.build(target=str(target), model=str(tmp_path / "saved"), data=(str(tiny_data),), out=out, cache_dir=cache_dir)
    texts = st_texts()
    np.testing.assert_allclose(edgepack.load_bundle(out)(texts), st.encode(texts, convert_to_numpy=True), atol=1e-5)


def test_unsupported_sentence_transformers_modules_are_one_line(tmp_path):
    from edgepack.errors import ModelError
    from edgepack.teacher import inspect_model_dir
    from edgepack.testing import tiny_model

    model = tiny_model(tmp_path / "m", "roberta", dense=8)
    cfg = json.loads((model / "2_Dense" / "config.json").read_text())
    cfg["activation_function"] = "my.module.Swish"
    (model / "2_Dense" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match=r"Dense activation my.module.Swish is not supported \(supported: Tanh, Identity"):
        inspect_model_dir(model)
    pcfg = model / "1_Pooling" / "config.json"
    pcfg.write_text(json.dumps({"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True}))
    with pytest.raises(ModelError, match="only one of mean, CLS or max pooling is supported"):
        inspect_model_dir(model)
    pcfg.write_text(json.dumps({"pooling_mode": "lasttoken"}))  # the sentence-transformers 5.x form
    with pytest.raises(ModelError, match="pooling lasttoken: only one of mean, CLS or max pooling is supported"):
        inspect_model_dir(model)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["roberta", "xlm-roberta", "mpnet"])
def test_real_android_arm64_profile_builds_each_family(family, tmp_path, tiny_data):
    """The shipped `android-arm64` profile itself (3 measured layers of 4, rank-96 embeddings in int4,
    buckets 32/64/128) on a teacher wide and deep enough for it; `--quick --budget 20` keeps it ~30 s."""
    from edgepack.testing import tiny_model

    # max_length 128: the student's position table is cut to the teacher's length, so it must cover
    # the profile's largest bucket (a shorter teacher fails at export: see the issue #13 note).
    model = tiny_model(tmp_path / "m", family, hidden=128, layers=4, intermediate=256, max_length=128)
    out = tmp_path / "bundle"
    edgepack.build(target="android-arm64", model=str(model), out=out, cache_dir=tmp_path / "cache", quick=True, budget="20")
    m = json.loads((out / "edgepack.json").read_text())
    assert len(m["student"]["teacher_layers_kept"]) == 3 and m["student"]["embedding_rank"] == 96
    assert {a["precision"] for a in m["artifacts"]} == {"int8 (embeddings int4)"}
    assert check(out) == 0
    model_file = out / "model.tflite"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))
    assert check(out) == 1


def test_distilled_student_keeps_the_teachers_dense_projection(tmp_path, tiny_data, cache_dir):
    """A student learns the teacher's pooled output; the teacher's Dense and Normalize follow it in the graph."""
    from edgepack.testing import tiny_model

    model = tiny_model(tmp_path / "m", "roberta", hidden=64, dense=16)
    out = tmp_path / "bundle"
    edgepack.build(target=android_tiny(tmp_path), model=str(model), data=(str(tiny_data),), out=out, cache_dir=cache_dir)
    m = json.loads((out / "edgepack.json").read_text())
    assert m["output_dim"] == 16 and m["pooling"] == {"mode": "mean", "normalize": True, "in_graph": True}
    assert m["student"]["strategy"] == "distil"
    got = edgepack.load_bundle(out)(["hello world", "the train is fast"])
    assert got.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-3)
    assert check(out) == 0


def test_xlmr_with_a_real_sentencepiece_tokenizer_builds_and_the_java_core_refuses_it_in_one_line(tmp_path, tiny_data, cache_dir):
    """A SentencePiece model converted as transformers converts XLM-R's (Precompiled normaliser): the Python
    runtime tokenises with `tokenizers` as the teacher does, so teacher and student bundles build and pass
    check; the Java core does not implement Precompiled yet and says so when opening the bundle."""
    pytest.importorskip("sentencepiece")
    from edgepack.testing import tiny_model

    model = tiny_model(tmp_path / "m", "xlm-roberta", tokenizer="sentencepiece", hidden=64)
    for target in ("x86-64", android_tiny(tmp_path)):
        out = tmp_path / f"out-{Path(target).stem}"
        edgepack.build(target=target, model=str(model), data=(str(tiny_data),), out=out, cache_dir=cache_dir)
        m = json.loads((out / "edgepack.json").read_text())
        assert m["tokenizer"]["type"] == "Unigram" and m["tokenizer"]["normalizers"] == ["Precompiled", "Strip", "Replace"]
        assert m["tokenizer"]["vocab_size"] == 1002 and m["tokenizer"]["pad_id"] == 1
        assert check(out) == 0
    ids = edgepack.load_bundle(out).encode(["Ａ\u0301b a <mask> b"])[0]
    from tokenizers import Tokenizer

    assert ids == Tokenizer.from_file(str(model / "tokenizer.json")).encode("Ａ\u0301b a <mask> b").ids
