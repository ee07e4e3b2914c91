"""`edgepack bench` and `edgepack inspect` on the tiny bundle. Timings are never asserted, only their shape."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edgepack.cli import main


def invoke(*args):
    return CliRunner().invoke(main, list(map(str, args)))


@pytest.fixture(scope="module")
def tiny_info(tiny_bundle_ro):
    from edgepack.inspect import inspect_bundle

    return inspect_bundle(tiny_bundle_ro)


@pytest.fixture(scope="module")
def tiny_bench(tiny_bundle_ro, tiny_data):
    from edgepack.benchmark import bench_bundle

    return bench_bundle(tiny_bundle_ro, threads=2, data=(str(tiny_data),), reps=5, sentences=8)


def test_inspect_counts_operators_per_format(tiny_info):
    by_format = {a["format"]: a for a in tiny_info["artifacts"]}
    assert by_format["onnx"]["operators"].get("MatMulInteger", 0) > 0  # dynamic int8 matmuls
    assert by_format["tflite"]["operators"].get("FULLY_CONNECTED", 0) > 0
    # per signature: word, position and segment lookups (ids computed in-graph, modeling.for_signatures)
    assert by_format["tflite"]["operators"].get("EMBEDDING_LOOKUP", 0) == 3


def test_inspect_weight_accounting_adds_up(tiny_info):
    for art in tiny_info["artifacts"]:
        w = art["weights"]
        assert sum(w["parts"].values()) == w["bytes"] == sum(w["dtypes"].values())
        assert w["parts"]["embeddings"] > 0 and w["parts"]["encoder"] > 0, art["path"]
        # dynamic int8 quantises the matmul weights: most parameters are int8
        assert 0.5 < w["quantised_share_params"] <= 1.0
        assert w["quantised_bytes"] + w["float_bytes"] <= w["bytes"]
        assert w["bytes"] < art["bytes"]  # weights live inside the file
    assert tiny_info["total_bytes"] == sum(tiny_info["files"].values())
    assert tiny_info["golden_cases"] > 0 and tiny_info["task"] == "sentence-embedding"


def test_inspect_embedding_tables_are_attributed_to_embeddings(tiny_info):
    # tiny_bert: 161-token vocab x 32 hidden, int8 => at least 161*32 bytes of embedding table
    for art in tiny_info["artifacts"]:
        assert art["weights"]["parts"]["embeddings"] >= 161 * 32


def test_inspect_cli_text_and_json(tiny_bundle_ro):
    text = invoke("inspect", tiny_bundle_ro)
    assert text.exit_code == 0, text.output
    assert "operators:" in text.output and "quantised:" in text.output and "by part:" in text.output
    as_json = invoke("inspect", tiny_bundle_ro, "--json")
    assert as_json.exit_code == 0
    assert {a["path"] for a in json.loads(as_json.output)["artifacts"]} == {"model.onnx", "model.tflite"}


def test_inspect_does_not_parse_tampered_artifacts(tiny_bundle):
    from edgepack.inspect import inspect_bundle

    path = tiny_bundle / "model.tflite"
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    arts = {a["path"]: a for a in inspect_bundle(tiny_bundle)["artifacts"]}
    assert "sha256 differs" in arts["model.tflite"]["error"]
    assert "operators" not in arts["model.tflite"]
    assert "operators" in arts["model.onnx"]


def test_bench_measures_each_format_at_1_and_n_threads(tiny_bench, tiny_data):
    runs = {(r["format"], r["threads"]) for r in tiny_bench["runs"]}
    assert runs == {("onnx", 1), ("onnx", 2), ("tflite", 1), ("tflite", 2)}
    assert tiny_bench["text_source"] == str(tiny_data) and tiny_bench["texts"] == 8
    for run in tiny_bench["runs"]:
        assert list(run["buckets"]) == ["16", "32"]  # the bundle's TFLite buckets, for both formats
        for s in [*run["buckets"].values(), run["sentences"]]:
            assert 0 < s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"]
            assert s["throughput_per_s"] == pytest.approx(1000 / s["mean_ms"])
        assert run["sentences"]["n"] == 8
        mem = run["memory"]
        assert 0 < mem["rss_before_load_mb"] <= mem["peak_rss_mb"]
        assert mem["rss_after_load_mb"] <= mem["peak_rss_mb"]


def test_bench_child_process_never_imports_torch(tiny_bundle_ro):
    from edgepack.benchmark import run_isolated

    assert run_isolated(_torch_loaded_after_measure, str(tiny_bundle_ro)) is False


def _torch_loaded_after_measure(root):
    import sys

    from edgepack.benchmark import measure

    measure(root, "onnx", 1, ["hello world"], [16], reps=1, warmup=0)
    return "torch" in sys.modules


def test_bench_cli_writes_json(tiny_bundle_ro, tmp_path):
    out = tmp_path / "bench.json"
    result = invoke("bench", tiny_bundle_ro, "--format", "onnx", "--threads", "1", "--reps", "3", "--sentences", "4", "--json", out)
    assert result.exit_code == 0, result.output
    assert "p99 ms" in result.output and "peak" in result.output and "x86" in result.output
    data = json.loads(out.read_text())
    assert [(r["format"], r["threads"]) for r in data["runs"]] == [("onnx", 1)]


def test_bench_refuses_tampered_bundle_and_bad_usage(tiny_bundle, tmp_path):
    assert invoke("bench", tmp_path / "missing").exit_code == 2
    assert invoke("inspect", tmp_path / "missing").exit_code == 2
    (tiny_bundle / "model.onnx").write_bytes(b"not a model")
    result = invoke("bench", tiny_bundle)
    assert result.exit_code == 1 and "sha256" in result.output


@pytest.fixture(scope="module")
def baselines():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "baselines.py"
    spec = importlib.util.spec_from_file_location("edgepack_bench_baselines", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_baselines_reads_stsb_with_quoting_off(baselines, tmp_path):
    tsv = tmp_path / "dev.tsv"
    tsv.write_text('score\tsentence1\tsentence2\n5.000\tA "quoted" man.\tA man.\n0.5\tx\ty\n', encoding="utf-8")
    assert baselines.read_stsb(tsv, None) == [('A "quoted" man.', "A man.", 5.0), ("x", "y", 0.5)]
    assert len(baselines.read_stsb(tsv, 1)) == 1


def test_baselines_ratios_and_table(baselines):
    def row(key, ms, mb, sp):
        lat = {"mean_ms": ms, "p50_ms": ms, "p95_ms": ms * 1.2, "n": 10}
        return {"key": key, "name": key, "stsb_spearman": sp, "cosine_to_teacher_mean": 0.99, "cosine_to_teacher_min": 0.98,
                "bytes_total": int(mb * 1e6), "bytes_largest_file": int(mb * 1e6), "files": 1, "real": lat, "padded128": dict(lat)}

    rows = [row("torch", 20.0, 90, 0.80), row("optimum-int8", 4.0, 23, 0.79), row("edgepack-tflite", 1.0, 10, 0.79)]
    baselines.ratios(rows)
    assert rows[2]["speedup_vs_torch_real"] == pytest.approx(20.0)
    assert rows[2]["speedup_vs_optimum_int8_real"] == pytest.approx(4.0)
    assert rows[2]["size_vs_optimum_int8"] == pytest.approx(10 / 23)
    meta = {"command": "python bench/baselines.py --quick", "machine": "x86_64", "cpu_count": 2, "date": "today", "pairs": 3,
            "sentences": 6, "timed": 6, "timed_tokens_mean": 12.0}
    md = baselines.markdown({"meta": meta, "rows": rows})
    assert "| edgepack-tflite | 0.7900 | 98.8% |" in md and "20.00×" in md and "4.00×" in md
    assert "x86 numbers differ from ARM" in md


def test_baselines_missing_stsb_is_a_usage_error(baselines, tmp_path, capsys):
    assert baselines.main(["--stsb", str(tmp_path / "nope.tsv")]) == 2
    assert "STS-B dev not found" in capsys.readouterr().err
