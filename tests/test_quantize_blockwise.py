"""Blockwise int8 weights for ONNX (`[quantize] block_size`)."""

import onnx
import pytest

from edgepack.check import check_bundle
from edgepack.errors import TargetError
from edgepack.targets import parse_target
from edgepack.testing import tiny_target_toml


def test_blockwise_bundle_uses_matmulnbits_and_passes_check(tiny_model, tiny_data, cache_dir, tmp_path):
    import edgepack

    target = tmp_path / "blockwise.toml"
    target.write_text(tiny_target_toml(formats=("onnx",), min_cosine_vs_student=0.99).replace(
        'mode = "dynamic-int8"', 'mode = "dynamic-int8"\nblock_size = 16'))
    out = tmp_path / "out"
    ctx = edgepack.build(target=str(target), model=str(tiny_model), data=(str(tiny_data),), out=out, cache_dir=cache_dir)
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert "MatMulNBits" in ops  # weights in int8 blocks
    assert "DynamicQuantizeLinear" not in ops or "MatMulInteger" not in ops
    assert ctx.metrics["formats"]["onnx"]["vs_student_fp32"]["cosine_min"] > 0.99
    assert check_bundle(out).passed


@pytest.mark.parametrize("extra", ["block_size = 12", 'mode = "fp16"\nblock_size = 32'])
def test_bad_block_size_is_refused(extra):
    text = tiny_target_toml(formats=("onnx",)).replace('mode = "dynamic-int8"', extra if "mode" in extra else 'mode = "dynamic-int8"\n' + extra)
    with pytest.raises(TargetError, match="block_size"):
        parse_target(text, "t.toml")
