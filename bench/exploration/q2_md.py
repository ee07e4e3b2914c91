import json
from common import *
rows = json.load(open(EXP / "q2_embed.json"))
md = ["## Q2 — embedding-table compression, full 6-layer teacher, untrained",
      "emb MB = storage of the word-embedding table alone (int8: +fp32 row scales; int4 b32: 0.5 B/param + fp32 scale per 32). Run stopped after r=192 fp32 to free CPU (r=192 quantised and r=256 not measured).", "",
      "| variant | emb params | emb MB | %teacher Spearman | dev mean cos | dev min cos | proxy cos |", "|---|---|---|---|---|---|---|"]
for r in rows:
    md.append(f"| {r['name']} | {r['emb_params']/1e6:.2f}M | {r['emb_MB']:.2f} | {r['pct_teacher']:.1f} | {r['dev_cos']:.3f} | {r['dev_min']:.3f} | {r['proxy_cos']:.3f} |")
append_md("\n".join(md))
