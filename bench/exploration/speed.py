"""ONNX export + dynamic int8 (per-channel, like Optimum arm64) + batch-1 latency in onnxruntime, 1 thread,
tokenisation included, on real STS-B dev sentences; candidates interleaved sentence by sentence."""
import os, sys, time, tempfile
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import onnxruntime as ort
from common import mean_pool, tokenizer, dev_sentences, EXP


class Head(nn.Module):
    def __init__(self, m):
        super().__init__(); self.m = m
    def forward(self, ids, mask):
        h = self.m(input_ids=ids, attention_mask=mask).last_hidden_state
        return F.normalize(mean_pool(h, mask), dim=-1)


def export_int8(model, path, quant=True):
    import warnings, contextlib, io
    from onnxruntime.quantization import QuantType, quantize_dynamic
    model.eval()
    fp = str(path) + ".fp32.onnx"
    ids = torch.ones(2, 16, dtype=torch.long)
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Head(model), (ids, ids.clone()), fp, input_names=["input_ids", "attention_mask"],
                          output_names=["embedding"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"}, "embedding": {0: "b"}})
        if quant:
            quantize_dynamic(fp, str(path), weight_type=QuantType.QInt8, per_channel=True)
            os.remove(fp)
        else:
            os.replace(fp, path)
    return os.path.getsize(path)


def session(path, threads=1):
    so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def latency(paths, n=300, warmup=5, rounds=1):
    """Mean/median ms per sentence (batch 1, tokenisation included) per model, interleaved."""
    tok = tokenizer()
    sents = dev_sentences()[3]
    rng = np.random.default_rng(0)
    sents = [sents[i] for i in rng.choice(len(sents), n, replace=False)]
    sess = [session(p) for p in paths]
    def one(s, x):
        b = tok(x, truncation=True, max_length=256, return_tensors="np")
        return s.run(None, {"input_ids": b["input_ids"].astype(np.int64), "attention_mask": b["attention_mask"].astype(np.int64)})
    for s in sess:
        for x in sents[:warmup]:
            one(s, x)
    t = [[] for _ in sess]
    for _ in range(rounds):
        for x in sents:
            for i, s in enumerate(sess):
                t0 = time.perf_counter(); one(s, x); t[i].append((time.perf_counter() - t0) * 1000)
    return [dict(mean_ms=float(np.mean(v)), median_ms=float(np.median(v))) for v in t]
