"""One name per model layer, the same in ONNX and TFLite graphs, so exclusion lists and the
accuracy-aware fallback speak of `encoder.3.output.dense` rather than of exporter-specific node names.

torch (ExecuTorch, quantised as a module): model.encoder.layer.3.output.dense   -> encoder.3.output.dense
ONNX (TorchScript exporter):  /model/encoder/layer.3/output/dense/MatMul          -> encoder.3.output.dense
TFLite (litert-torch):        ...BertEncoder_encoder/...BertLayer_3/...BertOutput_output/
                              torch.nn.modules.linear.Linear_dense;1              -> encoder.3.output.dense

litert-torch records `ClassName_attribute` per module and drops ModuleList names (`layer`), so the
ONNX side drops them too: `layer.3` becomes `3`. The wrapper's own attribute (`model`) is dropped.
"""

from __future__ import annotations

import re

# Every supported family (families.py) names its token table `…embeddings.word_embeddings`; a
# factorised one (student/embedding.py) looks up in `word_embeddings.lookup`.
WORD_EMBEDDINGS = "word_embeddings"
# Ops of the wrapper itself (pooling, L2 normalisation, classifier glue) in both formats.
HEAD = "head"
_ONNX_LIST_ITEM = re.compile(r"^[A-Za-z_]\w*\.(\d+)$")  # "layer.3" -> "3"


def onnx_layer(node_name: str) -> str:
    """Module path of an ONNX node: its name without the op segment."""
    parts = [p for p in node_name.split("/") if p]
    if len(parts) <= 1:
        return HEAD
    parts = parts[:-1]  # the last segment is the op ("MatMul", "Softmax_1", ...)
    if len(parts) > 1 and parts[0] == "model":
        parts = parts[1:]
    out = []
    for p in parts:
        m = _ONNX_LIST_ITEM.match(p)
        out.append(m.group(1) if m else p)
    return ".".join(out)


def tflite_layer(tensor_name: str) -> str:
    """Module path of a TFLite op, from its output tensor name (the last fused scope names the op)."""
    last = tensor_name.split(";;")[-1]
    last = re.sub(r";\d*$", "", last)
    out = []
    for seg in last.split("/"):
        if "." not in seg:
            continue  # not a module ("serving_default_output_0_output")
        cls_and_attr = seg.rsplit(".", 1)[-1]  # "BertLayer_3"
        if "_" not in cls_and_attr:
            continue  # the root module (our wrapper) has no attribute name
        out.append(cls_and_attr.split("_", 1)[1])
    if len(out) > 1 and out[0] == "model":
        out = out[1:]
    return ".".join(out) or HEAD


def torch_layer(fqn: str) -> str:
    """The same name for a torch module path inside the shipped head (ExecuTorch quantises the module
    before export): `model.encoder.layer.3.output.dense` -> `encoder.3.output.dense`."""
    parts = [p for p in fqn.split(".") if p]
    if parts and parts[0] == "model":
        parts = parts[1:]
    out = [p for i, p in enumerate(parts) if not (i + 1 < len(parts) and parts[i + 1].isdigit())]
    return ".".join(out) or HEAD


def matches(layer: str, node_name: str, patterns, layers=frozenset()) -> bool:
    """An exclude pattern matches a layer name (`encoder.3`, `attention.self`) or a raw node name.

    Layer patterns match whole dotted components: `encoder.1` does not match `encoder.10.…`. Pass
    node_name="" for TFLite: its fused tensor names mention neighbouring layers (`…query;;…key`).
    A pattern that is itself one of the graph's `layers` is only matched as a layer: `model` (the
    ops at the model's root, such as the attention-mask arithmetic) must not match every ONNX node
    under `/model/`, or keeping that one layer in float would keep the whole graph in float.
    """
    for p in patterns:
        if not p:
            continue
        if node_name and p not in layers and p in node_name:
            return True
        if layer and f".{p}." in f".{layer}.":
            return True
    return False


def onnx_nodes_matching(node_names, patterns) -> list[str]:
    """The ONNX nodes (by name, in order) an exclude list names, by layer or by raw node-name substring;
    the graph's own layer names are only matched as layers (see `matches`)."""
    names = list(node_names)
    layers = {onnx_layer(n) for n in names}
    return [n for n in names if matches(onnx_layer(n), n, patterns, layers)]
