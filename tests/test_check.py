"""`edgepack check` as a CI gate: exit codes, JUnit cases named after what failed, parity on user data."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner

from edgepack.cli import main
from edgepack.runtime.edgepack_runtime import MANIFEST, sha256_file


def run_check(*args):
    return CliRunner().invoke(main, ["check", *map(str, args)])


def junit_failures(path) -> dict[str, str]:
    root = ET.parse(path).getroot()
    return {tc.get("name"): tc.find("failure").get("message") for tc in root.iter("testcase") if tc.find("failure") is not None}


def junit_names(path) -> list[str]:
    return [tc.get("name") for tc in ET.parse(path).getroot().iter("testcase")]


def rewrite_manifest(bundle, edit) -> None:
    path = bundle / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    edit(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def rehash(bundle, rel) -> None:
    """What someone 'fixing' a checksum after swapping a model would do: integrity passes, goldens must not."""

    def edit(m):
        m["files"][rel] = {"sha256": sha256_file(bundle / rel), "bytes": (bundle / rel).stat().st_size}
        for art in m["artifacts"]:
            if art["path"] == rel:
                art["sha256"] = m["files"][rel]["sha256"]

    rewrite_manifest(bundle, edit)


@pytest.fixture(scope="session")
def other_teacher(session_dir):
    """Same architecture and vocab as tiny_model, different seed: a teacher the bundle does not match."""
    from edgepack.testing import tiny_bert

    return tiny_bert(session_dir / "tiny-embed-seed7", seed=7)


def test_pristine_bundle_passes_with_junit(tiny_bundle_ro, tmp_path):
    junit = tmp_path / "check.xml"
    result = run_check(tiny_bundle_ro, "--junit", junit)
    assert result.exit_code == 0, result.output
    assert "checks passed" in result.output
    assert junit_failures(junit) == {}
    names = junit_names(junit)
    assert "file model.onnx" in names and any(n.startswith("tflite: golden") for n in names)


def test_manifest_records_profile_budget(tiny_bundle_ro):
    manifest = json.loads((tiny_bundle_ro / MANIFEST).read_text())
    assert set(manifest["budget"]) >= {"min_cosine_vs_teacher", "min_agreement_vs_teacher", "max_size_mb"}
    assert manifest["provenance"]["teacher_builtin"] is False


def test_tampered_model_fails_naming_the_file(tiny_bundle, tmp_path):
    model = tiny_bundle / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    junit = tmp_path / "check.xml"
    result = run_check(tiny_bundle, "--junit", junit)
    assert result.exit_code == 1
    failures = junit_failures(junit)
    assert failures == {"file model.onnx": "sha256 differs from the manifest"}
    assert "FAIL file model.onnx" in result.output


def test_drifted_model_with_fixed_up_checksums_fails_golden_cases(tiny_bundle, tmp_path):
    import onnx
    from onnx import numpy_helper

    path = tiny_bundle / "model.onnx"
    model = onnx.load(str(path))
    rng = np.random.default_rng(0)
    for init in model.graph.initializer:  # perturb the float LayerNorm weights: the model drifts
        if "LayerNorm.weight" in init.name:
            arr = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array((arr * rng.uniform(0.2, 1.8, arr.shape)).astype(arr.dtype), init.name))
    onnx.save(model, str(path))
    rehash(tiny_bundle, "model.onnx")
    junit = tmp_path / "check.xml"
    result = run_check(tiny_bundle, "--junit", junit)
    assert result.exit_code == 1, result.output
    failures = junit_failures(junit)
    assert failures and all(name.startswith("onnx: golden") for name in failures)
    assert all(msg.startswith("cosine") for msg in failures.values())
    assert not any(name.startswith("tflite") for name in failures)  # the untouched format still passes


def test_parity_vs_own_teacher_passes(tiny_bundle_ro, tiny_model, tiny_data, tmp_path):
    junit = tmp_path / "check.xml"
    result = run_check(tiny_bundle_ro, "--teacher", tiny_model, "--data", tiny_data, "--junit", junit)
    assert result.exit_code == 0, result.output
    names = junit_names(junit)
    for fmt in ("onnx", "tflite"):
        assert f"{fmt}: cosine vs teacher (min)" in names


def test_parity_vs_wrong_teacher_fails_with_profile_tolerance(tiny_bundle, other_teacher, tiny_data, tmp_path):
    rewrite_manifest(tiny_bundle, lambda m: m["budget"].update(min_cosine_vs_teacher=0.99))
    junit = tmp_path / "check.xml"
    result = run_check(tiny_bundle, "--teacher", other_teacher, "--data", tiny_data, "--junit", junit)
    assert result.exit_code == 1, result.output
    failures = junit_failures(junit)
    assert set(failures) == {"onnx: cosine vs teacher (min)", "tflite: cosine vs teacher (min)"}
    assert "< 0.99" in failures["onnx: cosine vs teacher (min)"]
    assert "worst:" in failures["onnx: cosine vs teacher (min)"]


def test_teacher_without_data_uses_golden_texts(tiny_bundle_ro, tiny_model, tmp_path):
    junit = tmp_path / "check.xml"
    result = run_check(tiny_bundle_ro, "--teacher", tiny_model, "--junit", junit)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tiny_bundle_ro / MANIFEST).read_text())
    n = sum(1 for c in manifest["golden"] if c["text"])
    out = ET.parse(junit).getroot()
    messages = [tc.findtext("system-out") for tc in out.iter("testcase") if tc.get("name") == "onnx: cosine vs teacher (min)"]
    assert messages and f"over {n} texts" in messages[0]


def test_sentence_pair_file_gates_spearman(tiny_bundle_ro, tiny_model, tmp_path):
    from edgepack.testing import TINY_SENTENCES

    pairs = tmp_path / "pairs.tsv"
    rows = ["score\tsentence1\tsentence2"]
    # identical pairs score 5, unrelated ones 0: any sane embedding ranks them, so Spearman is high
    rows += [f"5.0\t{s}\t{s}" for s in TINY_SENTENCES[:8]]
    rows += [f"0.0\t{TINY_SENTENCES[i]}\t{TINY_SENTENCES[i + 8]}" for i in range(8)]
    pairs.write_text("\n".join(rows) + "\n", encoding="utf-8")
    junit = tmp_path / "check.xml"
    result = run_check(tiny_bundle_ro, "--teacher", tiny_model, "--data", pairs, "--junit", junit)
    assert result.exit_code == 0, result.output
    assert "onnx: Spearman vs teacher" in junit_names(junit)


def test_classifier_parity_checks_agreement_and_accuracy(tiny_classifier_bundle_ro, tiny_classifier, tiny_labelled_data, tmp_path):
    junit = tmp_path / "check.xml"
    result = run_check(tiny_classifier_bundle_ro, "--teacher", tiny_classifier, "--data", tiny_labelled_data, "--junit", junit)
    assert result.exit_code == 0, result.output
    names = junit_names(junit)
    assert {"onnx: agreement vs teacher", "onnx: accuracy vs teacher", "tflite: accuracy vs teacher"} <= set(names)


def test_parity_api_matches_cli(tiny_bundle_ro, tiny_model, tiny_data):
    from edgepack.check import check_bundle

    result = check_bundle(tiny_bundle_ro, data=(str(tiny_data),), teacher=tiny_model)
    parity = [c for c in result.cases if c.group == "parity"]
    assert result.passed and len(parity) == 4
    assert all("cosine" in c.message for c in parity)


@pytest.mark.parametrize(
    "args, message",
    [
        (["{missing}"], "no such bundle directory"),
        (["{bundle}", "--data", "{missing}"], "no such file"),
        (["{bundle}", "--teacher", "{missing}"], "no such directory"),
        (["{bundle}", "--data", "{data}"], "needs --teacher"),
        (["{bundle}", "--junit", "{missing}/deeper/out.xml"], "cannot write"),
        (["{plain}"], "not an edgepack bundle"),
    ],
)
def test_bad_usage_exits_2_with_one_line(args, message, tiny_bundle_ro, tiny_data, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    fill = {"missing": tmp_path / "nope", "bundle": tiny_bundle_ro, "data": tiny_data, "plain": plain}
    result = run_check(*[a.format(**fill) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_real_bundle_gates_against_builtin_teacher_without_flags(real_bundle_ro, tmp_path):
    """The default build records that its teacher is the built-in MiniLM: `check --data` needs no --teacher."""
    from edgepack.inspect import inspect_bundle

    # the build's own held-out sentences (the first golden cases): the same gate must pass again
    manifest = json.loads((real_bundle_ro / MANIFEST).read_text())
    data = tmp_path / "sample.txt"
    data.write_text("\n".join(c["text"] for c in manifest["golden"][:6]) + "\n", encoding="utf-8")
    junit = tmp_path / "check.xml"
    result = run_check(real_bundle_ro, "--data", data, "--junit", junit)
    assert result.exit_code == 0, result.output
    names = junit_names(junit)
    for fmt in {a["format"] for a in manifest["artifacts"]}:
        assert f"{fmt}: cosine vs teacher (min)" in names and f"{fmt}: cosine vs teacher (mean)" in names
    info = inspect_bundle(real_bundle_ro)
    for art in info["artifacts"]:
        assert art["weights"]["quantised_share_params"] > 0.5, art["path"]
    assert "Latency distribution per bucket" in (real_bundle_ro / "report.html").read_text(encoding="utf-8")
