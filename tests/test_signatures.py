"""Issue #12: one .tflite per bundle with one signature per sequence bucket, sharing the weights.

Sizes are measured on the tiny model here (the real MiniLM's figures are in bench/results/precision.*);
every golden case runs through every signature; format 1 bundles are refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgepack.cli import main
from edgepack.golden import golden_matches, golden_runs
from edgepack.runtime import edgepack_runtime as rt

# What issue #12 allows a multi-signature file over a one-bucket conversion of the same model.
MAX_MULTI_OVER_SINGLE = 1.15


def manifest(bundle: Path) -> dict:
    return json.loads((bundle / rt.MANIFEST).read_text(encoding="utf-8"))


def test_one_tflite_with_a_signature_per_bucket(tiny_bundle_ro):
    from ai_edge_litert.interpreter import Interpreter

    tflites = sorted(p.name for p in tiny_bundle_ro.glob("*.tflite"))
    assert tflites == ["model.tflite"]
    [art] = [a for a in manifest(tiny_bundle_ro)["artifacts"] if a["format"] == "tflite"]
    assert art["buckets"] == [16, 32]
    signatures = Interpreter(model_path=str(tiny_bundle_ro / "model.tflite")).get_signature_list()
    assert sorted(signatures) == ["seq16", "seq32"]
    assert signatures["seq16"]["inputs"] == ["attention_mask", "input_ids"]
    assert signatures["seq16"]["outputs"] == [art["outputs"][0]["signature_output"]]


def test_signatures_share_weights_within_the_size_bound(tmp_path):
    """Three buckets in one file against a one-bucket conversion of the same model, both quantised
    with the android-arm64 recipe (int8 matrices, int4 word table). The model is the tiny BERT made
    wide (hidden 256) so the weights, not the per-signature graph, dominate, as in any real model;
    on the tiny 32-wide one each signature's graph outweighs its weights. The position and segment ids
    are computed in the graph (modeling.for_signatures), so no signature carries its own constants."""
    from edgepack.export import export_tflite
    from edgepack.inspect import tflite_details
    from edgepack.modeling import for_signatures, load_hf_model, wrap
    from edgepack.quant.quantize import quantize_file
    from edgepack.targets import load_target
    from edgepack.testing import tiny_bert

    model = tiny_bert(tmp_path / "wide", layers=2, hidden=256, heads=4, intermediate=1024)
    head = for_signatures(wrap(load_hf_model(model, "sentence-embedding", False), "sentence-embedding", "bert"), "bert")
    spec = load_target("android-arm64").quantize
    sizes, weights = {}, {}
    for name, buckets in (("single", (32,)), ("multi", (32, 64, 128))):
        export_tflite(head, tmp_path / f"{name}.fp32.tflite", buckets)
        quantize_file(tmp_path / f"{name}.fp32.tflite", tmp_path / f"{name}.tflite", "tflite", spec, buckets=buckets)
        sizes[name] = (tmp_path / f"{name}.tflite").stat().st_size
        weights[name] = tflite_details(tmp_path / f"{name}.tflite")["weights"]["bytes"]
    # every weight buffer stored once; each extra signature adds only a few shape scalars, no constants
    assert 0 <= weights["multi"] - weights["single"] < 1024, weights
    assert sizes["multi"] <= MAX_MULTI_OVER_SINGLE * sizes["single"], sizes


@pytest.mark.parametrize("bundle_name", ["tiny_bundle_ro", "tiny_classifier_bundle_ro"])
def test_every_golden_case_passes_through_every_signature(bundle_name, request):
    bundle = request.getfixturevalue(bundle_name)
    m = manifest(bundle)
    b = rt.load_bundle(bundle, format="tflite")
    assert b.signatures == ["seq16", "seq32"]
    runs = 0
    for case in m["golden"]:
        fitting = [s for s, n in (("seq16", 16), ("seq32", 32)) if n >= len(case["ids"])]
        assert list(case["expected"]["tflite"]) == fitting  # every signature the case fits in
        for signature, expected in golden_runs(case, "tflite"):
            got = b.run_ids([case["ids"]], signature=signature)[0]
            ok, detail = golden_matches(m["task"], expected, got, m["golden_tolerance"])
            assert ok, (case["text"], signature, detail)
            runs += 1
        assert golden_runs(case, "onnx")[0][0] is None  # ONNX: dynamic shapes, no signatures
    assert runs > len(m["golden"])  # the short cases ran through both signatures


def test_check_reports_a_case_per_signature(tiny_bundle_ro):
    from edgepack.check import check_bundle

    result = check_bundle(tiny_bundle_ro)
    assert result.passed
    names = [c.name for c in result.cases]
    assert any(n.startswith("tflite: golden 0") and n.endswith(" seq16") for n in names)
    assert any(n.startswith("tflite: golden 0") and n.endswith(" seq32") for n in names)


def test_one_drifted_signature_fails_check_naming_it(tiny_bundle):
    """A golden output recorded for one signature that the model no longer reproduces fails that
    (case, signature) only: every signature is checked, not just the one the runtime would pick."""
    path = tiny_bundle / rt.MANIFEST
    m = json.loads(path.read_text())
    case = m["golden"][0]
    case["expected"]["tflite"]["seq32"] = [-x for x in case["expected"]["tflite"]["seq32"]]
    path.write_text(json.dumps(m))
    from edgepack.cli import main as cli

    result = CliRunner().invoke(cli, ["check", str(tiny_bundle)])
    assert result.exit_code == 1, result.output
    failed = [line for line in result.output.splitlines() if line.startswith("FAIL")]
    # edgepack.json is not in its own file table, so only the golden line fails
    assert len(failed) == 1 and failed[0].startswith("FAIL tflite: golden 0") and " seq32" in failed[0], result.output

def test_forcing_a_signature_that_does_not_fit_is_refused(tiny_bundle_ro):
    b = rt.load_bundle(tiny_bundle_ro, format="tflite")
    with pytest.raises(rt.InputError, match="20 tokens do not fit signature seq16"):
        b.run_ids([[2] * 20], signature="seq16")
    with pytest.raises(rt.InputError, match="no signature 'seq99'"):
        b.run_ids([[2, 3]], signature="seq99")
    onnx = rt.load_bundle(tiny_bundle_ro, format="onnx")
    with pytest.raises(rt.InputError, match="no signatures"):
        onnx.run_ids([[2, 3]], signature="seq16")


def test_a_signature_missing_from_the_model_is_one_line(tiny_bundle, tmp_path):
    def edit(m):
        for art in m["artifacts"]:
            if art["format"] == "tflite":
                art["signatures"][1]["name"] = "seq999"
    path = tiny_bundle / rt.MANIFEST
    m = json.loads(path.read_text())
    edit(m)
    path.write_text(json.dumps(m))
    with pytest.raises(rt.BundleFormatError, match=r"model.tflite: no signature seq999 in the model \(has: seq16, seq32\)"):
        rt.load_bundle(tiny_bundle, format="tflite")


def _as_format_1(bundle: Path) -> None:
    m = manifest(bundle)
    m["format_version"] = 1
    (bundle / rt.MANIFEST).write_text(json.dumps(m), encoding="utf-8")


def test_format_1_bundle_is_refused_by_runtime_check_inspect_and_bench(tiny_bundle):
    _as_format_1(tiny_bundle)
    with pytest.raises(rt.OlderFormatError, match="bundle format 1 .* is older than this runtime reads"):
        rt.load_bundle(tiny_bundle)
    runner = CliRunner()
    for args in (["check", str(tiny_bundle)], ["inspect", str(tiny_bundle)], ["bench", str(tiny_bundle), "--reps", "1"]):
        result = runner.invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and "bundle format 1" in lines[0] and "rebuild it" in lines[0], (args, result.output)
        assert "Traceback" not in result.output


def test_one_changed_byte_in_the_tflite_fails_check(tiny_bundle):
    model = tiny_bundle / "model.tflite"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    result = CliRunner().invoke(main, ["check", str(tiny_bundle)])
    assert result.exit_code == 1, result.output
    assert "FAIL file model.tflite" in result.output


def test_inspect_counts_shared_weights_once(tiny_bundle_ro):
    from edgepack.inspect import inspect_bundle

    [art] = [a for a in inspect_bundle(tiny_bundle_ro)["artifacts"] if a["format"] == "tflite"]
    assert art["signatures"] == ["seq16", "seq32"]
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as fb

    model = fb.read_model(str(tiny_bundle_ro / "model.tflite"))
    refs = [t.buffer for sg in model.subgraphs for t in sg.tensors if model.buffers[t.buffer].data is not None]
    size = {b: len(model.buffers[b].data) for b in refs}
    once, per_reference = sum(size[b] for b in set(refs)), sum(size[b] for b in refs)
    assert abs(art["weights"]["bytes"] - once) <= 0.01 * once  # each shared buffer counted once
    assert art["weights"]["bytes"] < 0.6 * per_reference  # not once per signature (two here)


def test_ids_from_input_change_no_output_and_leave_no_per_bucket_constants(tiny_model, tmp_path):
    """Without for_signatures each signature folds its own fp32 slice of the position table and a
    broadcast segment row into constants; with it the signatures share every buffer."""
    import torch

    from edgepack.export import export_tflite
    from edgepack.modeling import for_signatures, load_hf_model, wrap

    head = wrap(load_hf_model(tiny_model, "sentence-embedding", False), "sentence-embedding", "bert")
    ids = torch.tensor([[2, 40, 41, 42, 3]])
    assert torch.allclose(head(ids, torch.ones_like(ids)), for_signatures(head, "bert")(ids, torch.ones_like(ids)), atol=1e-6)
    assert for_signatures(head, "distilbert") is head  # its forward takes no position_ids

    def own_buffers(path):
        from ai_edge_quantizer.utils import tfl_flatbuffer_utils as fb

        model, users = fb.read_model(str(path)), {}
        for index, sg in enumerate(model.subgraphs):
            for t in sg.tensors:
                if model.buffers[t.buffer].data is not None and len(model.buffers[t.buffer].data) > 256:
                    users.setdefault(t.buffer, set()).add(index)
        return [b for b, subgraphs in users.items() if len(subgraphs) == 1]

    export_tflite(head, tmp_path / "folded.tflite", (16, 32))
    export_tflite(for_signatures(head, "bert"), tmp_path / "shared.tflite", (16, 32))
    assert len(own_buffers(tmp_path / "folded.tflite")) == 4  # position slice + segment row, per signature
    assert own_buffers(tmp_path / "shared.tflite") == []


@pytest.mark.slow
def test_real_default_bundle_has_one_file_per_format_and_every_signature_passes(real_bundle_ro):
    from edgepack.check import check_bundle

    assert sorted(p.name for p in real_bundle_ro.glob("model.*")) == ["model.onnx", "model.tflite"]
    m = manifest(real_bundle_ro)
    [art] = [a for a in m["artifacts"] if a["format"] == "tflite"]
    assert [s["name"] for s in art["signatures"]] == ["seq16", "seq32", "seq64", "seq128"]
    result = check_bundle(real_bundle_ro)
    assert result.passed, [c for c in result.cases if not c.passed]
    ran = [c.name for c in result.cases if c.name.startswith("tflite: golden")]
    assert sum(len(case["expected"]["tflite"]) for case in m["golden"]) == len(ran)
    assert {name.rsplit(" ", 1)[1] for name in ran} == {"seq16", "seq32", "seq64", "seq128"}



def test_shipped_tflite_has_compact_tensor_names_and_the_same_outputs(tiny_bundle_ro, cache_dir, tmp_path):
    """litert-torch's module-path tensor names (300+ bytes each, once per signature) are shortened after
    quantisation: no dotted module paths remain, the parts stay readable, and the model computes exactly
    what the long-named file did."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.tools import flatbuffer_utils as fb

    from edgepack.quant.quantize import compact_tflite_names

    names = [t.name.decode() for sg in fb.read_model(str(tiny_bundle_ro / "model.tflite")).subgraphs for t in sg.tensors if t.name]
    assert names and not any("transformers." in n or "edgepack.modeling" in n for n in names)
    assert any("Encoder_encoder/" in n for n in names)  # what inspect's part_of reads
    # On a long-named file (the fp32 export of the same bundle's model): smaller, same numbers.
    wanted = sorted(Interpreter(model_path=str(tiny_bundle_ro / "model.tflite")).get_signature_list())
    src = next(p for p in sorted(cache_dir.rglob("export-*/model.fp32.tflite"))
               if sorted(Interpreter(model_path=str(p)).get_signature_list()) == wanted)
    long_named = tmp_path / "long.tflite"
    long_named.write_bytes(src.read_bytes())
    short = tmp_path / "short.tflite"
    short.write_bytes(src.read_bytes())
    compact_tflite_names(short)
    assert short.stat().st_size < long_named.stat().st_size
    a, b = Interpreter(model_path=str(long_named)), Interpreter(model_path=str(short))
    assert a.get_signature_list() == b.get_signature_list()
    ids = np.array([[2, 10, 11, 12, 3] + [0] * 11], np.int32)
    mask = (np.arange(16) < 5).astype(np.int32)[None]
    out_a = a.get_signature_runner("seq16")(input_ids=ids, attention_mask=mask)
    out_b = b.get_signature_runner("seq16")(input_ids=ids, attention_mask=mask)
    assert all(np.array_equal(out_a[k], out_b[k]) for k in out_a)
