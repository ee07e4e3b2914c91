import pytest

from edgepack.errors import TargetError
from edgepack.targets import available_targets, load_target, parse_target


def test_shipped_profiles_load_and_validate():
    names = available_targets()
    for required in ("android-arm64", "linux-arm64", "x86-64"):
        assert required in names
    for name in names:
        profile = load_target(name)
        assert profile.name == name
        assert profile.formats and profile.default_format in profile.formats
        assert list(profile.sequence_buckets) == sorted(profile.sequence_buckets)


def test_android_profile_ships_tflite_and_onnx_with_per_channel_int8():
    p = load_target("android-arm64")
    assert set(p.formats) == {"tflite", "onnx"}
    assert p.default_format == "tflite"
    assert p.quantize.mode == "dynamic-int8" and p.quantize.per_channel


def test_unknown_target_names_the_choices():
    with pytest.raises(TargetError, match="unknown target 'nope'.*android-arm64"):
        load_target("nope")


@pytest.mark.parametrize(
    "text, message",
    [
        ('name = "x"\nformats = ["onnx"]\ncolour = 1\n', "unknown key 'colour'"),
        ('name = "x"\nformats = ["onnx"]\n[quantize]\nmode = "int3"\n', "quantize.mode"),
        ('name = "x"\nformats = ["onnx"]\n[quantize]\nbits = 4\n', "unknown key 'quantize.bits'"),
        ('name = "x"\nformats = ["coreml"]\n', "formats"),
        ('name = "x"\nformats = ["onnx"]\n[shapes]\nsequence_buckets = [64, 32]\n', "sequence_buckets"),
        ('name = "x"\nformats = ["onnx"]\n[budget]\nmax_size_mb = "big"\n', "budget.max_size_mb"),
        ('name = "x"\nformats = ["onnx"\n', "not valid TOML"),
        ('formats = ["onnx"]\n', "missing key 'name'"),
    ],
)
def test_bad_profiles_name_file_and_key(text, message):
    with pytest.raises(TargetError, match=message) as info:
        parse_target(text, "targets/bad.toml")
    assert "targets/bad.toml" in str(info.value)


def test_profile_from_path(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\nformats = ["onnx"]\n[budget]\nmax_size_mb = 3\n')
    p = load_target(str(path))
    assert p.name == "mine" and p.budget.max_size_mb == 3.0


def test_a_student_table_per_task_replaces_only_its_keys_for_that_task():
    """Issue #11: [student.text-classification] holds what a classifier build distils with instead."""
    p = parse_target('name = "x"\nformats = ["onnx"]\n[student]\nstrategy = "distil"\nsteps = 1500\ntrain_embeddings = true\n'
                     '[student.text-classification]\nsteps = 1000\ntrain_embeddings = false\n', "x.toml")
    assert p.student.steps == 1500 and p.student.train_embeddings
    assert p.student_for("sentence-embedding") == p.student
    c = p.student_for("text-classification")
    assert (c.steps, c.train_embeddings, c.strategy) == (1000, False, "distil")
    assert parse_target('name = "x"\nformats = ["onnx"]\n', "y.toml").student_for("text-classification").strategy == "teacher"


@pytest.mark.parametrize("table, message", [
    ("[student.text-classification]\ncolour = 1\n", "unknown key 'student.text-classification.colour'"),
    ("[student.text-classification]\nheads_keep = 2\n", "'student.text-classification.heads_keep' must be in"),
    ("[student.text-classification]\nsteps = -1\n", "'student.text-classification.steps' must be a non-negative"),
    ("[student.fill-mask]\nsteps = 1\n", "unknown key 'student.fill-mask'"),
])
def test_bad_per_task_student_tables_name_the_key(table, message):
    with pytest.raises(TargetError, match=message):
        parse_target('name = "x"\nformats = ["onnx"]\n[student]\nstrategy = "distil"\n' + table, "x.toml")


def test_a_shapes_table_per_task_gives_that_task_its_own_buckets():
    """[shapes.text-classification]: android-arm64's classifier keeps seq32/64/128, because its head made the
    four-signature .tflite 8.1 MB, over the profile's 8 MB gate (the embedding student's is 7.87 MB)."""
    p = parse_target('name = "x"\nformats = ["tflite"]\n[shapes]\nsequence_buckets = [16, 32, 64]\n'
                     '[shapes.text-classification]\nsequence_buckets = [32, 64]\n', "x.toml")
    assert p.sequence_buckets == (16, 32, 64)
    assert p.for_task("sentence-embedding") is p
    assert p.for_task("text-classification").sequence_buckets == (32, 64)
    android = load_target("android-arm64")
    assert android.sequence_buckets == (16, 32, 64, 128)
    assert android.for_task("text-classification").sequence_buckets == (32, 64, 128)


@pytest.mark.parametrize("table, message", [
    ("[shapes.text-classification]\nsequence_buckets = [64, 32]\n", "'shapes.text-classification.sequence_buckets' must be increasing"),
    ("[shapes.text-classification]\ncolour = 1\n", r"\[shapes.text-classification\] takes sequence_buckets only"),
    ("[shapes.fill-mask]\nsequence_buckets = [32]\n", r"unknown key in \[shapes\]"),
])
def test_bad_per_task_shapes_tables_name_the_key(table, message):
    with pytest.raises(TargetError, match=message):
        parse_target('name = "x"\nformats = ["onnx"]\n' + table, "x.toml")


def test_train_precision_must_be_fp32_bf16_or_auto():
    toml = 'name = "x"\nformats = ["onnx"]\n[student]\nstrategy = "distil"\ntrain_precision = "{}"\n'
    assert parse_target(toml.format("auto"), "x.toml").student.train_precision == "auto"
    with pytest.raises(TargetError, match="student.train_precision' must be 'fp32', 'bf16' or 'auto'"):
        parse_target(toml.format("fp16"), "x.toml")
