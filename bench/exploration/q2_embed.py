"""Q2: embedding-table compression on the full 6-layer teacher, untrained."""
import copy, torch
from transformers.utils import logging
logging.set_verbosity_error()
from common import *
from lowrank import *
torch.set_num_threads(1)

ev = Evaluator()
T = load_teacher()
E = T.embeddings.word_embeddings.weight.data.clone()
V, d = E.shape
rows = []

def run(name, make, params, bytes_):
    m = copy.deepcopy(T)
    make(m)
    r = {k: float(v) for k, v in ev(m).items()}
    r.update(name=name, emb_params=params, emb_MB=bytes_ / 1e6)
    rows.append(r); print(r, flush=True); dump("q2_embed", rows)

run("fp32 full table", lambda m: None, V * d, V * d * 4)
run("int8 per-row", lambda m: m.embeddings.word_embeddings.weight.data.copy_(fq_int8_rows(E)), V * d, V * d + V * 4)
run("int4 block32 sym", lambda m: m.embeddings.word_embeddings.weight.data.copy_(fq_int4_block(E)), V * d, V * d * 0.5 + V * d / 32 * 4)
run("int4 block32 asym", lambda m: m.embeddings.word_embeddings.weight.data.copy_(fq_int4_block_asym(E)), V * d, V * d * 0.5 + V * d / 32 * 5)
for r_ in (64, 96, 128, 192, 256):
    p = V * r_ + r_ * d
    run(f"SVD r={r_} fp32", lambda m: factorize_embeddings(m, r_), p, p * 4)
    def q8(m):
        factorize_embeddings(m, r_); A = m.embeddings.word_embeddings.A.weight.data; A.copy_(fq_int8_rows(A))
    run(f"SVD r={r_} A int8/row", q8, p, V * r_ + V * 4 + r_ * d)
    def q4(m):
        factorize_embeddings(m, r_); A = m.embeddings.word_embeddings.A.weight.data; A.copy_(fq_int4_block(A))
    run(f"SVD r={r_} A int4 b32", q4, p, V * r_ * 0.625 + r_ * d)

md = ["## Q2 — embedding-table compression, full 6-layer teacher, untrained",
      "emb MB = storage of the word-embedding table alone (int8: +fp32 row scales; int4 b32: 0.5 B/param + fp32 scale per 32).", "",
      "| variant | emb params | emb MB | %teacher Spearman | dev mean cos | dev min cos | proxy cos |", "|---|---|---|---|---|---|---|"]
for r in rows:
    md.append(f"| {r['name']} | {r['emb_params']/1e6:.2f}M | {r['emb_MB']:.2f} | {r['pct_teacher']:.1f} | {r['dev_cos']:.3f} | {r['dev_min']:.3f} | {r['proxy_cos']:.3f} |")
append_md("\n".join(md))
