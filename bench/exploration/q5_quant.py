"""Q5: fake-quant the trained students: encoder Linear weights int8 per-output-channel vs int4 block-32 (along
input dim, like MatMulNBits); factorised A int4 block-32 (like GatherBlockQuantized)."""
import torch, torch.nn as nn
from transformers.utils import logging
logging.set_verbosity_error()
from common import *
from shapes import make_student
from lowrank import fq_int8_rows, fq_int4_block
torch.set_num_threads(1)
T = load_teacher(); ev = Evaluator()
rows = []
def q_linears(m, bits):
    for mod in m.encoder.modules():
        if isinstance(mod, nn.Linear):
            w = mod.weight.data  # out × in: rows = output channels, blocks along input
            mod.weight.data = fq_int8_rows(w) if bits == 8 else fq_int4_block(w)
for run, layers, rank in [("R5_045_fullemb", [0, 4, 5], None), ("R4_045_general", [0, 4, 5], 128)]:
    for mbits in (8, 4):
        m = make_student(T, layers, 12, 1536, rank)
        m.load_state_dict(torch.load(CACHE / f"student_{run}.pt"))
        q_linears(m, mbits)
        we = m.embeddings.word_embeddings
        if rank:
            we.A.weight.data = fq_int4_block(we.A.weight.data)
        else:
            we.weight.data = fq_int4_block(we.weight.data)
        r = {k: float(v) for k, v in ev(m, proxy=False).items()}
        r.update(run=run, matrices=f"int{mbits}", emb="int4 b32"); rows.append(r); print(r, flush=True); dump("q5_quant", rows)
md = ["## Q5 — fake-quantised trained students (emb int4 block-32; encoder Linear int8 per-channel or int4 block-32)", "",
      "| run | matrices | embedding | %teacher Sp | dev cos | dev min |", "|---|---|---|---|---|---|"]
for r in rows:
    md.append(f"| {r['run']} | {r['matrices']} | {r['emb']} | {r['pct_teacher']:.2f} | {r['dev_cos']:.3f} | {r['dev_min']:.3f} |")
append_md("\n".join(md))
