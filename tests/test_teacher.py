"""Which teacher a bundle names: the model the user chose, not the checkpoint its config came from."""

from __future__ import annotations

import json
import shutil

from edgepack.teacher import BUILTIN_NAME, resolve_teacher


def test_builtin_teacher_is_named_all_minilm():
    # Before the fix: "nreimers/MiniLM-L6-H384-uncased (bert, 6 layers)", the base checkpoint recorded
    # in all-MiniLM-L6-v2's config.json. Reads configs only: no weights are loaded.
    teacher = resolve_teacher(None)
    assert BUILTIN_NAME == "all-MiniLM-L6-v2"
    assert teacher.description == "all-MiniLM-L6-v2 (bert, 6 layers)"


def test_a_model_directory_is_named_by_the_directory(tiny_model, tmp_path):
    model = tmp_path / "my-support-encoder"
    shutil.copytree(tiny_model, model)
    cfg = json.loads((model / "config.json").read_text())
    cfg["_name_or_path"] = "someone/base-checkpoint"
    (model / "config.json").write_text(json.dumps(cfg))
    assert resolve_teacher(str(model)).description == "my-support-encoder (bert, 2 layers)"
    assert resolve_teacher(str(model) + "/").description.startswith("my-support-encoder ")


def test_built_bundle_names_its_teacher(tiny_bundle_ro):
    manifest = json.loads((tiny_bundle_ro / "edgepack.json").read_text())
    report = json.loads((tiny_bundle_ro / "report.json").read_text())
    assert manifest["teacher"] == report["teacher"] == "tiny-embed (bert, 2 layers)"
    assert "teacher: tiny-embed (bert, 2 layers)" in (tiny_bundle_ro / "report.md").read_text()
