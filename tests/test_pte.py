"""Issue #14: format `pte`, an ExecuTorch program lowered to XNNPACK, validated by really running it.

The tiny model's bundle is built once (pte beside onnx, so the shared machinery sees two formats) and
its .pte is run in ExecuTorch's own Python runtime against the golden cases; the real MiniLM build of
the android-arm64-executorch profile is a slow test."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgepack.cli import main
from edgepack.errors import TargetError
from edgepack.golden import golden_matches, golden_runs
from edgepack.runtime import edgepack_runtime as rt


def manifest(bundle: Path) -> dict:
    return json.loads((bundle / rt.MANIFEST).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pte_bundle_ro(session_dir, tiny_model, tiny_data, cache_dir) -> Path:
    from edgepack.testing import build_from_toml, tiny_target_toml

    return build_from_toml(session_dir, "tiny-pte", tiny_target_toml(formats=("pte", "onnx")), tiny_model, tiny_data, cache_dir)


def executorch_method(path: Path, name: str = "forward"):
    import executorch.kernels.quantized  # noqa: F401  (the quantised lookups' kernels)
    from executorch.runtime import Runtime

    return Runtime.get().load_program(path).load_method(name)


def run_method(method, ids) -> np.ndarray:
    import torch

    x = torch.tensor([ids], dtype=torch.long)
    return method.execute([x, torch.ones_like(x)])[0].detach().numpy()[0]


def test_the_pte_reproduces_every_golden_case_in_executorch(pte_bundle_ro):
    """ExecuTorch's runtime itself (not edgepack's wrapper) against the manifest's golden outputs."""
    m = manifest(pte_bundle_ro)
    [art] = [a for a in m["artifacts"] if a["format"] == "pte"]
    method = executorch_method(pte_bundle_ro / art["path"], art["outputs"][0]["method"])
    assert len(m["golden"]) >= 8
    for case in m["golden"]:
        [(signature, expected)] = golden_runs(case, "pte")  # one method: one expectation per case
        assert signature is None
        ok, detail = golden_matches(m["task"], expected, run_method(method, case["ids"]), m["golden_tolerance"])
        assert ok, (case["text"], detail)


def test_manifest_describes_one_dynamic_length_method(pte_bundle_ro):
    m = manifest(pte_bundle_ro)
    [art] = [a for a in m["artifacts"] if a["format"] == "pte"]
    assert art["path"] == "model.pte" and art["precision"] == "int8"
    assert art["buckets"] is None and art["signatures"] == []
    assert [i["dtype"] for i in art["inputs"]] == ["int64", "int64"]
    assert art["inputs"][0]["shape"] == [1, "sequence"]
    assert art["outputs"][0]["method"] == "forward"
    assert [r["runtime"] for r in art["requires"]] == ["executorch"]
    assert art["requires"][0]["min_version"] == "1.5.1"
    assert "executorch" in m["provenance"]["tools"]
    assert set(m["metrics"]["formats"]) == {"pte", "onnx"}
    assert m["metrics"]["formats"]["pte"]["vs_student_fp32"]["cosine_min"] > 0.99


def test_runtime_runs_each_text_at_its_own_length(pte_bundle_ro):
    """No padding: a text in a batch gives what it gives alone, and the longest input fits."""
    b = rt.load_bundle(pte_bundle_ro, format="pte")
    assert b.signatures == [] and b.max_length == 32
    texts = ["hello world", "the movie was really good and the food is very bad " * 4]
    together = b.embed(texts)
    alone = np.stack([b.embed([t])[0] for t in texts])
    np.testing.assert_array_equal(together, alone)
    assert len(b.encode(texts)[1]) == 32  # truncated at the method's largest length
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-4)
    with pytest.raises(rt.InputError):
        b.run_ids([[5, 6]], signature="seq16")


def test_the_thread_pool_is_not_resized_under_a_loaded_method(pte_bundle_ro):
    """ExecuTorch's pool is one per process, and a method loaded before a resize hangs in its next call:
    a second bundle asking for another thread count runs on the pool as it is, and the first still runs."""
    first = rt.load_bundle(pte_bundle_ro, format="pte", threads=1)
    second = rt.load_bundle(pte_bundle_ro, format="pte", threads=2)
    assert first.backend.threads == second.backend.threads == 1
    np.testing.assert_array_equal(first.embed(["hello world"]), second.embed(["hello world"]))


def test_without_executorch_the_runtime_says_so_in_one_line(pte_bundle_ro, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "executorch.runtime", None)  # as if not installed
    with pytest.raises(rt.BackendUnavailable, match=r"executorch is not installed \(pip install executorch\)"):
        rt.load_bundle(pte_bundle_ro, format="pte")


def test_check_passes_and_one_changed_byte_in_the_pte_fails(pte_bundle_ro, tmp_path):
    ok = CliRunner().invoke(main, ["check", str(pte_bundle_ro)])
    assert ok.exit_code == 0, ok.output
    assert "checks passed" in ok.output
    bundle = tmp_path / "bundle"
    shutil.copytree(pte_bundle_ro, bundle)
    data = bytearray((bundle / "model.pte").read_bytes())
    data[len(data) // 2] ^= 0x01
    (bundle / "model.pte").write_bytes(bytes(data))
    bad = CliRunner().invoke(main, ["check", str(bundle)])
    assert bad.exit_code == 1, bad.output
    assert "model.pte" in bad.output and "sha256" in bad.output
    assert "Traceback" not in bad.output


def test_inspect_reads_the_program(pte_bundle_ro):
    result = CliRunner().invoke(main, ["inspect", str(pte_bundle_ro)])
    assert result.exit_code == 0, result.output
    assert "model.pte (pte, int8)" in result.output
    assert "delegate:XnnpackBackend" in result.output
    assert "quantized_decomposed::embedding_byte" in result.output  # the int8 lookups, outside XNNPACK
    assert "needs: executorch >= 1.5.1" in result.output


def test_bench_measures_the_pte_at_the_bundles_lengths(pte_bundle_ro):
    from edgepack.benchmark import bench_bundle, buckets_of

    assert buckets_of(manifest(pte_bundle_ro), "pte") == [32]  # max_length 32 of 32/64/128
    result = bench_bundle(pte_bundle_ro, formats=["pte"], threads=1, sentences=4, reps=2, isolate=False)
    [run] = result["runs"]
    assert run["format"] == "pte" and set(run["buckets"]) == {"32"} and run["buckets"]["32"]["p50_ms"] > 0


@pytest.mark.parametrize(("extra", "message"), [
    ('mode = "static-int8"', 'supports quantize.mode "dynamic-int8" or "none"'),
    ('mode = "fp16"', 'supports quantize.mode "dynamic-int8" or "none"'),
])
def test_profiles_refuse_what_pte_cannot_do(extra, message):
    from edgepack.targets import parse_target

    with pytest.raises(TargetError, match=message):
        parse_target(f'name = "x"\nformats = ["pte"]\n[quantize]\n{extra}\n', "x.toml")


def test_the_executorch_profile_ships_one_pte():
    from edgepack.targets import load_target

    t = load_target("android-arm64-executorch")
    assert t.formats == ("pte",) and t.default_format == "pte"
    assert t.quantize.mode == "dynamic-int8" and t.budget.max_size_mb == 8 and t.quantize.fallback_max_layers == 4
    # the same student as android-arm64, so one distillation serves both profiles
    arm64 = load_target("android-arm64")
    for task in ("sentence-embedding", "text-classification"):
        assert t.student_for(task) == arm64.student_for(task)


@pytest.fixture(scope="module")
def tiny_head(tiny_model):
    from edgepack.export import shipped_head
    from edgepack.teacher import inspect_model_dir

    return shipped_head(tiny_model, inspect_model_dir(tiny_model), 32)


def test_quantize_head_keeps_excluded_layers_float(tiny_head):
    import torch

    from edgepack.quant.executorch import quantize_head
    from edgepack.targets import QuantizeSpec

    q = quantize_head(tiny_head, QuantizeSpec(), exclude=("encoder.0",))
    layers = dict(q.named_modules())
    assert type(layers["model.encoder.layer.0.output.dense"].weight) is torch.nn.Parameter  # float, untouched
    assert type(layers["model.encoder.layer.1.output.dense"].weight) is not torch.nn.Parameter  # a torchao tensor
    assert type(tiny_head.model.encoder.layer[1].output.dense.weight) is torch.nn.Parameter  # the original stays fp32


def test_8da4w_with_int4_lookups_exports_and_stays_close(tiny_head, tmp_path):
    import torch

    from edgepack.export import export_pte
    from edgepack.quant.executorch import quantize_head
    from edgepack.targets import QuantizeSpec

    spec = QuantizeSpec(weight_bits=4, weight_block_size=32, embedding_bits=4, embedding_block_size=32)
    export_pte(quantize_head(tiny_head, spec), tmp_path / "m.pte", 32)
    method = executorch_method(tmp_path / "m.pte")
    ids = [2, 40, 41, 42, 43, 3]
    with torch.no_grad():
        ref = tiny_head(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long)).numpy()[0]
    got = run_method(method, ids)
    assert float(got @ ref / np.linalg.norm(got) / np.linalg.norm(ref)) > 0.95


def test_a_group_size_that_does_not_divide_is_one_line(tiny_head):
    from edgepack.quant.executorch import quantize_head
    from edgepack.targets import QuantizeSpec

    with pytest.raises(TargetError, match="weight_block_size' 256 does not divide the width 32"):
        quantize_head(tiny_head, QuantizeSpec(weight_bits=4, weight_block_size=256))


def test_torch_module_paths_take_the_shared_layer_names():
    from edgepack.quant.layer_names import torch_layer

    assert torch_layer("model.encoder.layer.3.output.dense") == "encoder.3.output.dense"
    assert torch_layer("model.embeddings.word_embeddings.lookup") == "embeddings.word_embeddings.lookup"
    assert torch_layer("") == "head"


@pytest.mark.slow
def test_real_minilm_executorch_profile_builds_and_checks(session_dir, cache_dir):
    """The built-in teacher through android-arm64-executorch (--quick student): gates pass, the .pte
    reproduces its golden cases in ExecuTorch's runtime, and `edgepack check` passes."""
    import edgepack

    out = session_dir / "bundle-real-pte"
    edgepack.build(target="android-arm64-executorch", out=out, cache_dir=cache_dir, quick=True)
    m = manifest(out)
    [art] = m["artifacts"]
    assert art["format"] == "pte" and art["bytes"] < 8e6
    method = executorch_method(out / art["path"])
    for case in m["golden"]:
        [(_, expected)] = golden_runs(case, "pte")
        ok, detail = golden_matches(m["task"], expected, run_method(method, case["ids"]), m["golden_tolerance"])
        assert ok, (case["text"], detail)
    result = CliRunner().invoke(main, ["check", str(out)])
    assert result.exit_code == 0, result.output
