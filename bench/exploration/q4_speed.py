"""Q4/Q5: size (ONNX dynamic int8 per-channel) and batch-1 latency of student shapes vs the int8 6-layer teacher,
plus untrained quality of pruned shapes. Interleaved timing, 1 thread (noisy: the machine is shared)."""
import json, os, sys, time, torch
from transformers.utils import logging
logging.set_verbosity_error()
from common import *
from shapes import make_student, count_params
from speed import export_int8, latency
torch.set_num_threads(1)

T = load_teacher()
out = CACHE / "onnx"; out.mkdir(exist_ok=True)
best3 = [int(x) for x in os.environ.get("BEST3", "0,3,5").split(",")]
best4 = [int(x) for x in os.environ.get("BEST4", "0,2,4,5").split(",")]
best2 = [int(x) for x in os.environ.get("BEST2", "0,5").split(",")]
shapes = [
    ("teacher 6L", list(range(6)), 12, 1536, None),
    ("6L r128", list(range(6)), 12, 1536, 128),
    ("4L r128", best4, 12, 1536, 128),
    ("4L r64 h8 f768", best4, 8, 768, 64),
    ("3L r128", best3, 12, 1536, 128),
    ("3L r128 f768", best3, 12, 768, 128),
    ("3L r128 h8 f768", best3, 8, 768, 128),
    ("3L r128 h6 f512", best3, 6, 512, 128),
    ("2L r128", best2, 12, 1536, 128),
]
if len(sys.argv) > 1:
    shapes = [s for s in shapes if s[0] in sys.argv[1:]]
ev = Evaluator()
rows, paths = [], []
for name, layers, h, f, r in shapes:
    m = make_student(T, layers, h, f, r)
    emb_p, enc_p = count_params(m)
    path = out / (name.replace(" ", "_") + ".onnx")
    size = export_int8(m, path)
    q = {k: float(v) for k, v in ev(m).items()}
    rows.append(dict(name=name, layers=layers, heads=h, ffn=f, rank=r, emb_params=emb_p, enc_params=enc_p,
                     onnx_int8_MB=size / 1e6, **q))
    paths.append(path)
    print(rows[-1], flush=True)
lat = latency(paths, n=300, rounds=1)
base = lat[0]["mean_ms"] if shapes[0][0] == "teacher 6L" else None
for r, l in zip(rows, lat):
    r.update(l)
    if base:
        r["speedup_vs_teacher_int8"] = base / l["mean_ms"]
dump("q4_speed", rows)
md = ["## Q4 — shapes: ONNX dynamic-int8 size, batch-1 latency (1 thread, tokenisation incl., 300 STS-B dev sentences, interleaved), untrained quality",
      "Pruning by weight magnitude; embeddings factorised by SVD (A int8 Gather + B MatMul). Machine shared with another job: latency ratios are more reliable than absolute ms.", "",
      "| shape | layers | params emb/enc | ONNX int8 MB | mean ms | median ms | speed-up vs int8 teacher | %teacher Sp (untrained) | dev cos | proxy cos |", "|---|---|---|---|---|---|---|---|---|---|"]
for r in rows:
    md.append(f"| {r['name']} | {r['layers']} | {r['emb_params']/1e6:.2f}M/{r['enc_params']/1e6:.2f}M | {r['onnx_int8_MB']:.2f} | {r['mean_ms']:.2f} | {r['median_ms']:.2f} | {r.get('speedup_vs_teacher_int8', float('nan')):.2f}× | {r['pct_teacher']:.1f} | {r['dev_cos']:.3f} | {r['proxy_cos']:.3f} |")
append_md("\n".join(md))
