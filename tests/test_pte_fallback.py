"""The accuracy-aware fallback for format `pte` (issue #14's ExecuTorch format, issue #11's parity gates).

Its own file, so that pytest-xdist (`--dist loadfile`) can run it beside tests/test_pte.py: its two builds export
five tiny programs, about two minutes on 2 cores."""

from __future__ import annotations

import json


def test_the_pte_fallback_keeps_the_most_sensitive_linear_layers_float_and_passes(tmp_path, tiny_model, tiny_data, cache_dir):
    """`fallback_max_layers` works for pte: layers are ranked on the torchao-quantised torch head (a .pte cannot be
    re-quantised, and exporting one per trial is slow), then each kept layer is exported and the gate re-checked on
    the real .pte in ExecuTorch. Before, a pte profile refused the key."""
    from edgepack.check import check_bundle
    from edgepack.testing import build_from_toml, tiny_target_toml

    # int4 linear layers (8da4w) and float lookups (`exclude`): int8's error on the tiny model is at float32's
    # rounding, int4's is not, and it is the linear layers' alone, which the fallback can take back. A gate half way
    # from plain to exact is one the most sensitive layers can meet; at most two keeps the test to 5 exports.
    quantize = 'weight_bits = 4\nweight_block_size = 32\nexclude = ["embeddings"]\n'
    toml = tiny_target_toml(formats=("pte",)).replace('mode = "dynamic-int8"\n', 'mode = "dynamic-int8"\n' + quantize)
    plain = build_from_toml(tmp_path, "pte-plain", toml, tiny_model, tiny_data, cache_dir)
    c = json.loads((plain / "report.json").read_text())["metrics"]["formats"]["pte"]["vs_student_fp32"]["cosine_min"]
    assert c < 0.999999  # ~4e-6 from exact: ~60 times float32's step near 1
    gate = round(1 - (1 - c) / 2, 8)
    toml = toml.replace(quantize, quantize + "fallback_max_layers = 2\n") + f"min_cosine_vs_student = {gate}\n"
    out = build_from_toml(tmp_path, "pte-fallback", toml, tiny_model, tiny_data, cache_dir)
    entry = json.loads((out / "report.json").read_text())["metrics"]["fallback"]["formats"]["pte"]
    assert entry["passed"] and entry["kept_float"] and entry["kept_weights"] == "float"
    assert entry["ranked_on"].startswith("torchao") and entry["sensitivity"][0]["error_removed"] > 0
    assert entry["after"]["vs_student_fp32"]["cosine_min"] >= gate > entry["before"]["vs_student_fp32"]["cosine_min"]
    assert "ranked on the torchao-quantised torch head (eager)" in (out / "report.md").read_text()
    assert check_bundle(out).passed
