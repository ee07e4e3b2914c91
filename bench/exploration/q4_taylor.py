"""Q4: untrained quality of head/FFN pruning on the 3-layer subset: magnitude vs Taylor (grad×activation) importance."""
import torch
from transformers.utils import logging
logging.set_verbosity_error()
from common import *
from shapes import make_student
torch.set_num_threads(1)
T = load_teacher()
ev = Evaluator()
tr, _ = corpus_split()
imp_s = tr[:256]
imp_t = teacher_cache("corpus_imp256", imp_s, max_len=128)
rows = []
for h, f in [(12, 1024), (8, 768), (6, 512)]:
    for imp in ("magnitude", "taylor"):
        m = make_student(T, [0, 4, 5], h, f, None, importance=imp, imp_data=(imp_s, imp_t))
        r = {k: float(v) for k, v in ev(m).items()}
        r.update(heads=h, ffn=f, importance=imp); rows.append(r); print(r, flush=True); dump("q4_taylor", rows)
md = ["## Q4b — pruning importance, layers [0,4,5], full fp32 embedding, untrained",
      "Taylor = |Σ activation×gradient| of (1−cos to teacher) over 256 built-in-corpus training sentences (heads via head-mask gradient).", "",
      "| heads | ffn | importance | %teacher Sp | dev cos | dev min | proxy cos |", "|---|---|---|---|---|---|---|",
      "| 12 | 1536 | (none) | 97.0 | 0.743 | 0.132 | 0.750 |"]
for r in rows:
    md.append(f"| {r['heads']} | {r['ffn']} | {r['importance']} | {r['pct_teacher']:.1f} | {r['dev_cos']:.3f} | {r['dev_min']:.3f} | {r['proxy_cos']:.3f} |")
append_md("\n".join(md))
