"""The robustness matrix for `edgepack build` (docs/reliability.md lists every case with its test).

Each failing build ends with one `error:` line, a documented exit code, no traceback, no staging or
lock files next to --out, and the previous bundle at --out byte-identical. Builds run in-process
through click's CliRunner on the tiny model with the session cache, so each case takes well under
a second; the real-process and signal cases are in test_reliability_signals.py.
"""

from __future__ import annotations

import errno
import json
import shutil
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner
from reliability_helpers import assert_clean_failure, leftovers, snapshot

from edgepack.cli import main


@pytest.fixture
def out(tiny_bundle_ro, tmp_path) -> Path:
    """--out already holding a good bundle: every failure below must leave it byte-identical."""
    dst = tmp_path / "dist" / "bundle"
    shutil.copytree(tiny_bundle_ro, dst)
    return dst


@pytest.fixture
def build(tiny_model, tiny_target, tiny_data, cache_dir, out):
    def run(*extra, model=None, target=None, data=None, out_dir=None):
        args = ["build", "--target", str(target or tiny_target), "--model", str(model or tiny_model),
                "--out", str(out_dir or out), "--cache-dir", str(cache_dir)]
        for d in (data if data is not None else [tiny_data]):
            args += ["--data", str(d)]
        result = CliRunner().invoke(main, args + list(extra))
        return result

    return run


def expect_failure(result, code: int, needle: str, out: Path, before: dict) -> str:
    return assert_clean_failure(result.exit_code, result.stderr, code, needle, out, before, result.stdout)


# -- bad input: each case makes one bad model, profile or data file; the build must refuse it ------

class Inputs:
    """What a case needs to make its bad input: scratch space and copies of the tiny model and data."""

    def __init__(self, tmp_path: Path, tiny_model: Path, tiny_data: Path, tiny_labelled_data: Path):
        self.tmp, self.tiny_model, self.tiny_data, self.tiny_labelled_data = tmp_path, tiny_model, tiny_data, tiny_labelled_data

    def model_copy(self, name="model") -> Path:
        dst = self.tmp / name
        shutil.copytree(self.tiny_model, dst)
        return dst

    def file(self, name: str, content) -> Path:
        path = self.tmp / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path


@pytest.fixture
def inputs(tmp_path, tiny_model, tiny_data, tiny_labelled_data) -> Inputs:
    return Inputs(tmp_path, tiny_model, tiny_data, tiny_labelled_data)


@pytest.fixture
def model_copy(inputs):
    return inputs.model_copy


def _edit_config(model: Path, **changes) -> Path:
    cfg = json.loads((model / "config.json").read_text())
    cfg.update(changes)
    (model / "config.json").write_text(json.dumps(cfg))
    return model


def _without_weights(i: Inputs) -> Path:
    model = i.model_copy()
    (model / "model.safetensors").unlink()
    return model


def _truncated_safetensors(i: Inputs) -> Path:
    model = i.model_copy()
    st = model / "model.safetensors"
    st.write_bytes(st.read_bytes()[: st.stat().st_size // 2])
    return model


def _garbage_safetensors_header(i: Inputs) -> Path:
    model = i.model_copy()
    st = model / "model.safetensors"
    raw = st.read_bytes()
    st.write_bytes(struct.pack("<Q", 40) + b"{not json at all, just garbage bytes...}" + raw[48:])
    return model


def _config_not_json(i: Inputs) -> Path:
    model = i.model_copy()
    (model / "config.json").write_text("{ this is not json", encoding="utf-8")
    return model


def _needs_remote_code(i: Inputs) -> Path:
    model = _edit_config(i.model_copy(), auto_map={"AutoModel": "modeling_evil.EvilModel"})
    (model / "modeling_evil.py").write_text("raise SystemExit('remote code ran')\n")
    return model


def _pickle_only(model: Path) -> Path:
    import torch
    from safetensors.torch import load_file

    state = load_file(str(model / "model.safetensors"))
    (model / "model.safetensors").unlink()
    torch.save(state, model / "pytorch_model.bin")
    return model


BAD_MODELS = [  # (make the --model argument, what the one error line says); all exit 2
    pytest.param(lambda i: i.tmp / "nope", "no such directory", id="path_missing"),
    pytest.param(lambda i: i.tiny_data, "is a file", id="path_is_a_file"),
    pytest.param(lambda i: "someone/not-a-cached-model", "offline", id="hub_id_not_cached_is_refused_offline"),
    pytest.param(_without_weights, "no model weights", id="without_weights"),
    pytest.param(_truncated_safetensors, "corrupt or truncated", id="truncated_safetensors"),
    pytest.param(_garbage_safetensors_header, "corrupt or truncated", id="corrupt_safetensors_header"),
    pytest.param(_config_not_json, "not readable JSON", id="config_not_json"),
    pytest.param(lambda i: _edit_config(i.model_copy(), model_type="gpt2", architectures=["GPT2Model"]),
                 "unsupported architecture 'gpt2'", id="unsupported_architecture"),
    pytest.param(lambda i: _pickle_only(i.model_copy()), "--allow-pickle", id="pickle_only_is_refused"),
    pytest.param(_needs_remote_code, "never runs remote code", id="needing_remote_code_is_refused"),
]


@pytest.mark.parametrize("make_model,needle", BAD_MODELS)
def test_bad_model(make_model, needle, build, out, inputs):
    model = make_model(inputs)
    before = snapshot(out)
    expect_failure(build(model=model), 2, needle, out, before)


def test_model_pickle_only_accepted_with_allow_pickle(model_copy):
    # The refusal is a policy, not a dead end: with the flag the teacher stage accepts the model.
    # (A full --allow-pickle build is in the slow test below.)
    from edgepack.teacher import inspect_model_dir

    model = _pickle_only(model_copy())
    teacher = inspect_model_dir(model, allow_pickle=True)
    assert teacher.family == "bert" and teacher.task == "sentence-embedding"


@pytest.mark.slow
def test_model_pickle_only_builds_with_allow_pickle(build, out, model_copy):
    model = _pickle_only(model_copy())
    result = build("--allow-pickle", model=model)
    assert result.exit_code == 0, result.output
    assert (out / "edgepack.json").is_file() and leftovers(out.parent) == []


BAD_TARGETS = [  # (make the --target argument, what the one error line says); all exit 2
    pytest.param(lambda i: "no-such-target", "unknown target 'no-such-target'", id="unknown_name"),
    pytest.param(lambda i: i.tmp / "missing.toml", "target file not found", id="file_missing"),
    pytest.param(lambda i: i.file("bad.toml", 'name = "x"\nformats = ["onnx"\n[shapes\n'), "not valid TOML", id="malformed_toml"),
    pytest.param(lambda i: i.file("typo.toml", 'name = "x"\nformats = ["onnx"]\nformat_default = "onnx"\n'),
                 "unknown key 'format_default'", id="unknown_top_level_key"),
    pytest.param(lambda i: i.file("typo2.toml", 'name = "x"\nformats = ["onnx"]\n[budget]\nmax_size_megabytes = 3\n'),
                 "unknown key 'budget.max_size_megabytes'", id="unknown_section_key"),
    pytest.param(lambda i: i.file("types.toml", 'name = "x"\nformats = ["onnx"]\n[shapes]\nsequence_buckets = "32"\n'),
                 "sequence_buckets", id="wrong_value_type"),
]


@pytest.mark.parametrize("make_target,needle", BAD_TARGETS)
def test_bad_target(make_target, needle, build, out, inputs):
    target = make_target(inputs)
    before = snapshot(out)
    expect_failure(build(target=target), 2, needle, out, before)


BAD_DATA = [  # (make the --data files and extra flags, what the one error line says); all exit 2
    pytest.param(lambda i: ([i.tmp / "nope.txt"], ()), "no such file", id="missing_file"),
    pytest.param(lambda i: ([i.file("empty.txt", b"")], ()), "no usable text", id="empty_file"),
    pytest.param(lambda i: ([i.file("blank.txt", "\n   \n\t\n\n")], ()), "no usable text", id="only_blank_lines"),
    pytest.param(lambda i: ([i.file("weights.txt", bytes(range(256)) * 64)], ()), "binary", id="binary_file"),
    pytest.param(lambda i: ([i.file("latin1.txt", "café crème brûlée\nnaïve\n".encode("latin-1"))], ()), "not UTF-8", id="not_utf8"),
    pytest.param(lambda i: ([i.file("numbers.csv", "id,score\n1,0.5\n2,0.7\n")], ()), "no text column", id="table_without_text_column"),
    pytest.param(lambda i: ([i.tiny_labelled_data], ("--text-column", "body_text")), "no column 'body_text'", id="named_text_column_missing"),
    pytest.param(lambda i: ([i.file("broken.jsonl", '{"text": "fine"}\n{"text": "unterminated\n')], ()), "line 2 is not JSON",
                 id="jsonl_with_a_broken_line"),
]


@pytest.mark.parametrize("make_data,needle", BAD_DATA)
def test_bad_data(make_data, needle, build, out, inputs):
    data, extra = make_data(inputs)
    before = snapshot(out)
    expect_failure(build(*extra, data=data), 2, needle, out, before)


def test_data_one_huge_line_is_cut_and_builds(build, out, tmp_path, tiny_data):
    # One 2 MB line (no newline at all) is accepted: lines are cut at 10,000 characters.
    huge = tmp_path / "huge.txt"
    huge.write_text("word " * 400_000, encoding="utf-8")
    result = build(data=[tiny_data, huge])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    manifest = json.loads((out / "edgepack.json").read_text())
    assert manifest["provenance"]["data"].endswith("huge.txt")
    assert leftovers(out.parent) == []


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_data_one_huge_table_field(build, out, tmp_path, tiny_data, suffix):
    # Python's csv module refuses fields over 128 KiB with a bare _csv.Error; edgepack must not.
    table = tmp_path / f"huge{suffix}"
    sep = "," if suffix == ".csv" else "\t"
    table.write_text(f"text{sep}label\n" + ("long " * 60_000) + f"{sep}1\nshort text{sep}0\n", encoding="utf-8")
    result = build(data=[tiny_data, table])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output


# -- the output directory -------------------------------------------------------------------------

def test_out_is_existing_non_bundle_dir_refused_without_force(build, tmp_path):
    precious = tmp_path / "photos"
    precious.mkdir()
    (precious / "holiday.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    before = snapshot(precious)
    result = build(out_dir=precious)
    expect_failure(result, 2, "pass --force", precious, before)


def test_out_non_bundle_dir_replaced_with_force(build, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("old")
    result = build("--force", out_dir=other)
    assert result.exit_code == 0, result.output
    assert (other / "edgepack.json").is_file() and not (other / "notes.txt").exists()


def test_out_is_a_file(build, tmp_path):
    target_file = tmp_path / "bundle.zip"
    target_file.write_bytes(b"PK")
    result = build(out_dir=target_file)
    assert_clean_failure(result.exit_code, result.stderr, 2, "exists and is a file")
    assert target_file.read_bytes() == b"PK"


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
                    reason="root ignores directory permissions; test_out_parent_not_writable simulates it")
def test_out_parent_read_only_real_chmod(build, out):
    before = snapshot(out)
    out.parent.chmod(0o555)
    try:
        result = build()
    finally:
        out.parent.chmod(0o755)
    expect_failure(result, 2, "cannot write there", out, before)


def test_out_parent_not_writable(build, out, monkeypatch):
    # Tests run as root, where chmod does not stop writes: simulate EACCES on the first write next
    # to --out (the lock file). Before the fix this was "internal error", exit 3.
    import builtins

    from edgepack import publish

    real_open = builtins.open

    def deny(path, *args, **kwargs):
        if str(path).startswith(str(out.parent)):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(publish, "open", deny, raising=False)
    before = snapshot(out)
    expect_failure(build(), 2, "cannot write there (Permission denied)", out, before)


def test_out_staging_not_creatable(build, out, monkeypatch):
    from edgepack import publish

    def deny(*args, **kwargs):
        raise PermissionError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(publish.tempfile, "mkdtemp", deny)
    before = snapshot(out)
    expect_failure(build(), 2, "cannot write there (Read-only file system)", out, before)


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("module,name", [
    pytest.param("edgepack.report", "write_reports", id="while_writing_the_bundle"),
    pytest.param("edgepack.quant.quantize", "quantize_onnx", id="while_quantising"),
    pytest.param("edgepack.cache", "StageDir.mark_done", id="in_the_cache"),
])
def test_disk_full(module, name, build, out, monkeypatch):
    import importlib

    owner = importlib.import_module(module)
    if "." in name:  # a method: patch it on its class
        cls_name, name = name.split(".")
        owner = getattr(owner, cls_name)
    monkeypatch.setattr(owner, name, _enospc)
    before = snapshot(out)
    expect_failure(build(), 2, "No space left on device", out, before)


def test_publish_failure_restores_previous_bundle(build, out, monkeypatch):
    # The second rename (staging -> --out) fails after the old bundle was moved aside.
    calls = []
    real_rename = Path.rename

    def flaky(self, target):
        calls.append((self.name, Path(target).name))
        if len(calls) == 2:
            raise OSError(errno.EIO, "Input/output error")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", flaky)
    before = snapshot(out)
    expect_failure(build(), 2, "Input/output error", out, before)
    assert len(calls) == 3  # aside, failed publish, put back


def test_second_build_while_one_is_writing(build, out):
    from edgepack.publish import _out_lock

    before = snapshot(out)
    with _out_lock(out):  # another build holds --out
        result = build()
        assert_clean_failure(result.exit_code, result.stderr, 2, "another edgepack build is writing there")
    assert snapshot(out) == before
    assert leftovers(out.parent) == []


def test_lock_file_swapped_under_us_is_not_trusted(tmp_path, monkeypatch):
    # Build A unlinks its lock file on exit. Build C, which opened the old file just before, then
    # locks an orphaned inode while build D holds the fresh file at the same path: C must notice
    # and report D instead of running alongside it.
    import fcntl

    from edgepack import errors, publish

    out = tmp_path / "bundle"
    lock_path = tmp_path / ".bundle.edgepack.lock"
    holder = {}
    real_flock = fcntl.flock

    def swap_then_lock(fh, op):
        if "d" not in holder:
            lock_path.unlink()  # A exits
            holder["d"] = open(lock_path, "w")  # D starts and locks the new file
            real_flock(holder["d"], fcntl.LOCK_EX | fcntl.LOCK_NB)
        return real_flock(fh, op)

    monkeypatch.setattr(publish.fcntl, "flock", swap_then_lock)
    try:
        with pytest.raises(errors.UsageError, match="another edgepack build"):
            with publish._out_lock(out):
                pass
    finally:
        holder["d"].close()


def test_public_check_stays_callable_after_the_cli_imports_its_module(tiny_bundle_ro):
    # `from .check import ...` (as the CLI does) used to rebind `edgepack.check` to the module.
    import edgepack
    from edgepack.check import check_bundle  # noqa: F401

    assert callable(edgepack.check) and edgepack.check(tiny_bundle_ro).passed


def test_model_changed_in_place_is_not_served_from_a_stale_cache(tmp_path, tiny_model, tiny_target, tiny_data, cache_dir):
    # The export cache was keyed by the teacher's path: new weights at the same path silently
    # shipped the old model. Now the key is a hash of the model's files.
    import numpy as np

    from edgepack.runtime import edgepack_runtime as rt
    from edgepack.testing import tiny_bert

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    args = ["build", "--target", str(tiny_target), "--model", str(model), "--data", str(tiny_data), "--cache-dir", str(cache_dir)]
    assert CliRunner().invoke(main, args + ["--out", str(tmp_path / "a")]).exit_code == 0
    shutil.rmtree(model)
    tiny_bert(model, seed=1)  # retrained in place
    assert CliRunner().invoke(main, args + ["--out", str(tmp_path / "b")]).exit_code == 0
    a = rt.load_bundle(tmp_path / "a", format="onnx").embed(["the movie was really good"])
    b = rt.load_bundle(tmp_path / "b", format="onnx").embed(["the movie was really good"])
    assert (tmp_path / "a" / "model.onnx").read_bytes() != (tmp_path / "b" / "model.onnx").read_bytes()
    assert float(a[0] @ b[0]) < 0.99


# -- a bundle that is not what was validated --------------------------------------------------------
# `edgepack predict` loads through the runtime (one `error:` line); `edgepack check` reports every
# failed check as a FAIL line and exits 1, and never loads a file that failed verification.

def _predict(bundle, *extra):
    return CliRunner().invoke(main, ["predict", str(bundle), "hello world", *extra])


def _check(bundle):
    return CliRunner().invoke(main, ["check", str(bundle)])


def _edit_manifest(bundle: Path, fn) -> None:
    path = bundle / "edgepack.json"
    manifest = json.loads(path.read_text())
    fn(manifest)
    path.write_text(json.dumps(manifest))


def assert_check_fails(bundle: Path, needle: str) -> None:
    result = _check(bundle)
    assert result.exit_code == 1 and "Traceback" not in result.output
    fails = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert fails and any(needle in line for line in fails), result.output
    assert result.stderr.startswith("failed:")


def test_bundle_missing_file(tiny_bundle):
    (tiny_bundle / "model.onnx").unlink()
    r = _predict(tiny_bundle, "--format", "onnx")
    assert_clean_failure(r.exit_code, r.stderr, 1, "model.onnx: listed in the manifest but missing")
    assert_check_fails(tiny_bundle, "file model.onnx: missing")


def test_bundle_extra_file(tiny_bundle):
    (tiny_bundle / "backdoor.py").write_text("print('hi')\n")
    assert_check_fails(tiny_bundle, "file backdoor.py: not listed in the manifest (extra file)")
    # The runtime only reads what the manifest names, so predict still works (and says nothing).
    assert _predict(tiny_bundle).exit_code == 0


@pytest.mark.parametrize("name", ["model.onnx", "model.tflite", "tokenizer.json"])
def test_bundle_tampered_file(tiny_bundle, name):
    path = tiny_bundle / name
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # one bit
    path.write_bytes(bytes(raw))
    fmt = "tflite" if name.endswith(".tflite") else "onnx"
    r = _predict(tiny_bundle, "--format", fmt)
    assert_clean_failure(r.exit_code, r.stderr, 1, f"{name}: sha256 differs from the manifest")
    assert_check_fails(tiny_bundle, f"file {name}: sha256 differs")


def test_bundle_newer_format_version(tiny_bundle):
    # Nothing is wrong with such a bundle, this edgepack is too old for it: bad input (2) for both
    # commands. Before the fix check reported it as a failed check (exit 1), predict as exit 2.
    _edit_manifest(tiny_bundle, lambda m: m.update(format_version=m["format_version"] + 1))
    for r in (_predict(tiny_bundle), _check(tiny_bundle)):
        assert_clean_failure(r.exit_code, r.stderr, 2, "is newer than this runtime reads")


@pytest.mark.parametrize("path", ["../model.onnx", "/etc/passwd", "sub/../../model.onnx"])
def test_bundle_manifest_path_escapes(tiny_bundle, path):
    def escape(m):
        for a in m["artifacts"]:
            if a["format"] == "onnx":
                a["path"] = path
        m["files"][path] = m["files"]["model.onnx"]

    _edit_manifest(tiny_bundle, escape)
    (tiny_bundle.parent / "model.onnx").write_bytes((tiny_bundle / "model.onnx").read_bytes())
    r = _predict(tiny_bundle, "--format", "onnx")
    assert_clean_failure(r.exit_code, r.stderr, 2, "manifest path")
    assert_check_fails(tiny_bundle, "manifest path")


def test_bundle_symlink_out_of_the_bundle(tiny_bundle, tmp_path):
    outside = tmp_path / "elsewhere.onnx"
    outside.write_bytes((tiny_bundle / "model.onnx").read_bytes())  # same bytes, same hash
    (tiny_bundle / "model.onnx").unlink()
    (tiny_bundle / "model.onnx").symlink_to(outside)
    r = _predict(tiny_bundle, "--format", "onnx")
    assert_clean_failure(r.exit_code, r.stderr, 2, "points outside the bundle")
    assert_check_fails(tiny_bundle, "points outside the bundle")


def test_bundle_manifest_not_json(tiny_bundle):
    (tiny_bundle / "edgepack.json").write_text("{ half a manifest", encoding="utf-8")
    r = _predict(tiny_bundle)
    assert_clean_failure(r.exit_code, r.stderr, 2, "not valid JSON")


def test_bundle_manifest_wrong_shape(tiny_bundle):
    # Before the fix: "internal error: AttributeError", exit 3.
    _edit_manifest(tiny_bundle, lambda m: m.update(files=[]))
    r = _predict(tiny_bundle)
    assert_clean_failure(r.exit_code, r.stderr, 2, "manifest 'files' must be a JSON dict")


def test_bundle_dir_missing(tmp_path):
    r = _predict(tmp_path / "nope")
    assert_clean_failure(r.exit_code, r.stderr, 2, "no such bundle directory")
    r = _check(tmp_path / "nope")
    assert_clean_failure(r.exit_code, r.stderr, 2, "no such bundle directory")


def test_predict_text_not_utf8(tiny_bundle_ro):
    # Non-UTF-8 argv bytes reach Python as lone surrogates. Before the fix: exit 3 (TypeError).
    r = CliRunner().invoke(main, ["predict", str(tiny_bundle_ro), "caf\udce9"])
    assert_clean_failure(r.exit_code, r.stderr, 2, "text 1 is not valid UTF-8")
