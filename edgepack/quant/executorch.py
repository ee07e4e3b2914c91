"""Quantisation for ExecuTorch (issue #14): torchao's configs applied to the torch module before it is
exported (export.export_pte), the way ExecuTorch's own LLM export does it, since a .pte cannot be
re-quantised after lowering as an .onnx or .tflite file can.

mode / keys                     linear layers (XNNPACK)                          embedding lookups
dynamic-int8                    8da8w: int8 dynamic activations, int8 weights    int8 per row
                                per output channel
dynamic-int8, weight_bits = 4   8da4w: int8 dynamic activations, int4 weights    int8 per row
                                in groups of `weight_block_size` inputs
embedding_bits = 4                                                               word table int4 in groups of
                                                                                 `embedding_block_size`
none                            fp32                                             fp32

The embedding lookups stay outside XNNPACK: do_quant_fusion_and_const_prop (export.py) turns them into
ExecuTorch's quantized_decomposed::embedding_byte / embedding_4bit kernels, which is why a runtime
must `import executorch.kernels.quantized`. As in the other formats (quantize.py), only the word table
goes to int4; position and token-type tables stay int8. `exclude` keeps layers in float by the names
layer_names.torch_layer gives them (`encoder.1.output.dense`).
"""

from __future__ import annotations

import copy

from ..errors import TargetError
from ..targets import QuantizeSpec
from . import layer_names, quiet

# What a device needs for a .pte (manifest `requires`). 1.5.1 is the version every .pte here was written
# and run with (constraints.txt); the XNNPACK delegate and the quantized embedding kernels come with it.
EXECUTORCH = {"runtime": "executorch", "python_package": "executorch", "min_version": "1.5.1",
              "feature": "XNNPACK delegate and quantized_decomposed embedding kernels (import executorch.kernels.quantized)",
              "android": "org.pytorch:executorch-android"}


def quantize_head(head, spec: QuantizeSpec, exclude=()):
    """A quantised copy of the fp32 head per `spec` (the original is left as it was)."""
    import torch

    head = copy.deepcopy(head)
    if spec.mode == "none":
        return head
    if spec.mode != "dynamic-int8":  # targets.py refuses these for pte; a direct caller gets one line too
        raise TargetError(f"format pte supports quantize.mode \"dynamic-int8\" or \"none\", not \"{spec.mode}\"")
    with quiet():  # torchao logs each optional GPU kernel it cannot load
        from torchao.quantization.granularity import PerAxis, PerGroup
        from torchao.quantization.quant_api import Int8DynamicActivationIntxWeightConfig, IntxWeightOnlyConfig, quantize_

    names = {id(m): name for name, m in head.named_modules()}

    def kept(fqn: str) -> bool:
        return layer_names.matches(layer_names.torch_layer(fqn), "", exclude)

    for fqn, module in head.named_modules():
        if isinstance(module, torch.nn.Embedding):
            # padding_idx only zeroes a gradient; torchao's quantised embedding does not export with it
            module.padding_idx = None
        if isinstance(module, torch.nn.Linear) and spec.weight_bits == 4 and not kept(fqn):
            _check_groups(fqn, module.in_features, spec.weight_block_size, "weight_block_size")
        if _is_word_table(fqn, module) and spec.embedding_bits == 4 and not kept(fqn):
            _check_groups(fqn, module.embedding_dim, spec.embedding_block_size, "embedding_block_size")

    def linear(m, fqn):
        return isinstance(m, torch.nn.Linear) and not kept(names.get(id(m), fqn))

    def embedding(bits):
        def pick(m, fqn):
            fqn = names.get(id(m), fqn)
            if not isinstance(m, torch.nn.Embedding) or kept(fqn):
                return False
            return (spec.embedding_bits == 4 and _is_word_table(fqn, m)) == (bits == 4)
        return pick

    with quiet():
        quantize_(head, IntxWeightOnlyConfig(weight_dtype=torch.int8, granularity=PerAxis(0)), embedding(8))
        if spec.embedding_bits == 4:
            quantize_(head, IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(spec.embedding_block_size)),
                      embedding(4))
        if spec.weight_bits == 4:
            weights = Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int4,
                                                            weight_granularity=PerGroup(spec.weight_block_size))
        else:
            weights = Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int8, weight_granularity=PerAxis(0))
        quantize_(head, weights, linear)
    return head


def _is_word_table(fqn: str, module) -> bool:
    import torch

    return isinstance(module, torch.nn.Embedding) and layer_names.WORD_EMBEDDINGS in fqn.split(".")


def _check_groups(fqn: str, width: int, block: int, key: str) -> None:
    if width % block:
        raise TargetError(f"'quantize.{key}' {block} does not divide the width {width} of {layer_names.torch_layer(fqn)} "
                          f"(format pte); choose a block size that divides it")
