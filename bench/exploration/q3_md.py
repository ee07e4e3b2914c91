"""Summarise all q3_*.json runs into q3.md (table + curves)."""
import json, glob
from pathlib import Path
EXP = Path(__file__).resolve().parent
runs = [json.load(open(f)) | {"file": f} for f in sorted(glob.glob(str(EXP / "q3_R*.json")))]
md = ["## Q3 — distillation runs (training clock only; evals excluded). Teacher STS-B dev Spearman 86.72",
      "Proxy = mean cosine to teacher on the 300-sentence held-out slice of the built-in corpus (never trained on); the best-by-proxy checkpoint (step 0 included) is what would ship.", "",
      "| run | layers | r | heads/ffn | emb trained | loss | lr | bs | data (n) | teacher cache s | steps | steps/s | sent/s | step0 %T / cos | final %T | final dev cos / min | shipped (best proxy) %T / dev cos | best dev %T |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
for r in runs:
    a = r["args"]; c0 = r["curve"][0]; f = r["final"]; b = r["best_by_proxy"]; d = r["best_by_dev"]
    md.append(f"| {a['name']} | {a['layers']} | {a['rank']} | {a['heads']}/{a['ffn']} | {a['emb']} | {a['loss']} | {a['lr']:g} | {a['bs']} | {a['data']} ({r['n_train']}) | {r['teacher_cache_s']:.0f} | {r['steps']} | {r['steps_per_s']:.2f} | {r['sent_per_s']:.0f} | {c0['pct_teacher']:.1f} / {c0['dev_cos']:.3f} | {f['pct_teacher']:.2f} | {f['dev_cos']:.3f} / {f['dev_min']:.3f} | {b['pct_teacher']:.2f} / {b['dev_cos']:.3f} (step {b['step']}) | {d['pct_teacher']:.2f} (step {d['step']}) |")
md += ["", "Curves (train s: proxy cos | dev %teacher | dev cos):", ""]
for r in runs:
    md.append(f"- {r['args']['name']}: " + "; ".join(f"{c['train_s']:.0f}s: {c['proxy_cos']:.3f} | {c['pct_teacher']:.1f} | {c['dev_cos']:.3f}" for c in r["curve"]))
(EXP / "q3.md").write_text("\n".join(md) + "\n")
print("\n".join(md))
