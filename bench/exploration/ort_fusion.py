"""onnxruntime's transformer fusions before dynamic int8, against edgepack's quantisation of the same graph
(bench/exploration/speed_2026-11-28.md).

    python bench/exploration/ort_fusion.py <work cache>/export-*/model.fp32.onnx   # the default student's export
"""
import sys, tempfile, time, numpy as np
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import onnxruntime as ort, onnx
from edgepack.quant.quantize import quantize_onnx
src = Path(sys.argv[1]); out = Path(tempfile.mkdtemp(prefix="ort-fusion-"))
a = out / "a.onnx"; quantize_onnx(src, a, "dynamic-int8", True, embedding_bits=4)
from onnxruntime.transformers.optimizer import optimize_model
from onnxruntime.transformers.fusion_options import FusionOptions
opts = FusionOptions("bert")
m = optimize_model(str(src), model_type="bert", num_heads=12, hidden_size=384, optimization_options=opts, opt_level=0)
print(m.get_fused_operator_statistics())
fused = out / "fused.onnx"; m.save_model_to_file(str(fused))
b = out / "b.onnx"
from edgepack.quant.quantize import quantize_onnx_word_embeddings_int4
from onnxruntime.quantization import QuantType, quantize_dynamic
mid = out / "mid.onnx"; quantize_onnx_word_embeddings_int4(fused, mid, 32)
quantize_dynamic(str(mid), str(b), weight_type=QuantType.QInt8, per_channel=True, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
for p in (a, b): print(p, p.stat().st_size/1e6, {n.op_type for n in onnx.load(str(p)).graph.node})
def sess(p):
    so = ort.SessionOptions(); so.intra_op_num_threads = 1; so.inter_op_num_threads = 1
    return ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"])
S = {p.name: sess(p) for p in (a, b)}
names = [i.name for i in S["a.onnx"].get_inputs()]
rng = np.random.default_rng(0)
for n in (8, 17, 32):
    ids = rng.integers(1000, 20000, (1, n)); ids[0,0]=101; ids[0,-1]=102
    feed = {k: (ids if k=="input_ids" else np.ones_like(ids) if k=="attention_mask" else np.zeros_like(ids)) for k in names}
    outs = {k: s.run(None, feed)[0] for k, s in S.items()}
    cos = float((outs["a.onnx"]*outs["b.onnx"]).sum()/np.linalg.norm(outs["a.onnx"])/np.linalg.norm(outs["b.onnx"]))
    ts = {k: [] for k in S}
    for _ in range(300):
        for k, s in S.items():
            t=time.perf_counter(); s.run(None, feed); ts[k].append(time.perf_counter()-t)
    print(n, "cos", round(cos,5), {k: round(np.median(v)*1e3,3) for k, v in ts.items()})
