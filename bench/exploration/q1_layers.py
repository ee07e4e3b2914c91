"""Q1: untrained layer subsets (3/4/5 of 6): STS-B dev fidelity vs held-in corpus proxy."""
import itertools, time, torch
from scipy.stats import spearmanr, kendalltau
from transformers.utils import logging
logging.set_verbosity_error()
from common import *
torch.set_num_threads(1)

ev = Evaluator()
T = load_teacher()
rows = []
for k in (3, 4, 5):
    for sub in itertools.combinations(range(6), k):
        m = subset_model(T, sub)
        t0 = time.time(); rp = ev(m, dev=False); tp = time.time() - t0
        t0 = time.time(); rd = ev(m, proxy=False); td = time.time() - t0
        r = dict(layers=list(sub), k=k, **{k2: float(v) for k2, v in rd.items() if k2 != "eval_s"},
                 **{k2: float(v) for k2, v in rp.items() if k2 != "eval_s"}, proxy_s=tp, dev_s=td)
        rows.append(r); print(r, flush=True)
        dump("q1_layers", rows)

md = ["## Q1 — untrained layer subsets (embeddings + kept layers copied, mean pool + L2)",
      f"Teacher STS-B dev Spearman: {ev.t_sp:.2f}. Proxy = mean cosine to teacher on 300 held-out built-in corpus sentences.",
      "", "| k | layers | %teacher Spearman | dev mean cos | dev min cos | proxy mean cos | proxy eval s | dev eval s |", "|---|---|---|---|---|---|---|---|"]
for k in (3, 4, 5):
    sub = sorted([r for r in rows if r["k"] == k], key=lambda r: -r["pct_teacher"])
    for r in sub:
        md.append(f"| {k} | {r['layers']} | {r['pct_teacher']:.1f} | {r['dev_cos']:.3f} | {r['dev_min']:.3f} | {r['proxy_cos']:.3f} | {r['proxy_s']:.1f} | {r['dev_s']:.1f} |")
md.append("")
md.append("Rank agreement of proxy mean cosine with dev metrics (within each k):")
md.append("")
md.append("| k | n | Spearman(proxy, %teacher) | Kendall | Spearman(proxy, dev cos) | best by proxy | best by dev %teacher |")
md.append("|---|---|---|---|---|---|---|")
for k in (3, 4, 5, "all"):
    sub = rows if k == "all" else [r for r in rows if r["k"] == k]
    p = [r["proxy_cos"] for r in sub]; a = [r["pct_teacher"] for r in sub]; c = [r["dev_cos"] for r in sub]
    bp = max(sub, key=lambda r: r["proxy_cos"])["layers"]; bd = max(sub, key=lambda r: r["pct_teacher"])["layers"]
    md.append(f"| {k} | {len(sub)} | {spearmanr(p, a).correlation:.2f} | {kendalltau(p, a).correlation:.2f} | {spearmanr(p, c).correlation:.2f} | {bp} | {bd} |")
append_md("\n".join(md))
