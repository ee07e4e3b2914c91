"""The default android-arm64 build with one change patched in; stops after training and scores the fp32
student on STS-B dev (imports edgepack). Research only: the cache key does not see the patch, so give each
run its own cache (copy the teacher-outputs-* entries of ~/.cache/edgepack into it to skip the teacher pass).

    python bench/exploration/patched_build.py hybrid K R CACHE   # hybrid_lookup.md
    python bench/exploration/patched_build.py mse W CACHE        # loss_weight.md: train.MSE_WEIGHT = W
    python bench/exploration/patched_build.py eval STUDENT_DIR   # a saved student, in its own tokenizer
"""
import csv, sys, numpy as np, torch
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from scipy.stats import spearmanr
from edgepack.modeling import load_hf_model, pooled
from edgepack.teacher import builtin_model_path
from edgepack.tokenizer import load_tokenizer, tokenizer_spec

rows = list(csv.reader(open(Path(__file__).resolve().parents[3] / "shared" / "data" / "stsb" / "dev.tsv", encoding="utf-8"), delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
sents = sorted({s for r in rows for s in r[1:3]}); idx = {s: i for i, s in enumerate(sents)}
gold = [float(r[0]) for r in rows]
tok = load_tokenizer(tokenizer_spec(builtin_model_path())); tok.no_padding(); tok.enable_truncation(128)
dev_ids = [e.ids for e in tok.encode_batch(sents)]
def sp(e): return spearmanr([float(e[idx[a]] @ e[idx[b]]) for _, a, b in rows], gold).correlation
@torch.no_grad()
def embed(m):
    m = m.float().eval()
    out = np.zeros((len(sents), 384), np.float32)
    order = sorted(range(len(sents)), key=lambda i: len(dev_ids[i]))
    for s in range(0, len(order), 64):
        ix = order[s:s+64]; L = max(len(dev_ids[i]) for i in ix)
        ids = torch.zeros(len(ix), L, dtype=torch.long); mask = torch.zeros_like(ids)
        for r, i in enumerate(ix): ids[r,:len(dev_ids[i])] = torch.tensor(dev_ids[i]); mask[r,:len(dev_ids[i])] = 1
        out[ix] = torch.nn.functional.normalize(pooled(m, ids, mask, "mean", True), dim=-1).numpy()
    return out
T = embed(load_hf_model(builtin_model_path(), "sentence-embedding")); ts = sp(T)
def report(name, m):
    E = embed(m); c = (E * T).sum(1)
    print(f"RESULT {name}: STS-B dev {100 * sp(E) / ts:.2f}% of the teacher, cosine mean {c.mean():.4f} min {c.min():.4f}", flush=True)

if sys.argv[1] == "eval":
    tok = load_tokenizer(tokenizer_spec(Path(sys.argv[2]))); tok.no_padding(); tok.enable_truncation(128)
    dev_ids = [e.ids for e in tok.encode_batch(sents)]
    report(sys.argv[2], load_hf_model(Path(sys.argv[2]), "sentence-embedding")); sys.exit(0)

import edgepack
from edgepack.families import FAMILIES, set_attr
from edgepack.student import distil, embedding, layers, train

mode = sys.argv[1]
if mode == "hybrid":
    K, R, cache = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    name = f"hybrid K{K} R{R}"
else:
    train.MSE_WEIGHT, cache = float(sys.argv[2]), sys.argv[3]
    name = f"MSE weight {train.MSE_WEIGHT:g}"

class Hybrid(torch.nn.Module):
    def __init__(self, table):
        super().__init__()
        V, H = table.shape
        self.full = torch.nn.Embedding(K, H); self.full.weight.data.copy_(table[:K])
        u, s, vh = torch.linalg.svd(table[K:].float(), full_matrices=False)
        self.lookup = torch.nn.Embedding(V, R); self.lookup.weight.data.zero_(); self.lookup.weight.data[K:] = u[:, :R] * s[:R]
        self.project = torch.nn.Linear(R, H, bias=False); self.project.weight.data.copy_(vh[:R].T)
    def forward(self, ids):
        return torch.where((ids < K).unsqueeze(-1), self.full(ids.clamp(max=K - 1)), self.project(self.lookup(ids)))

def patched(model, family, rank, svd=None):
    set_attr(model.base_model, FAMILIES[family].word_embeddings, Hybrid(layers.word_embeddings(model, family).weight.data))
if mode == "hybrid":
    embedding.factorise_word_embeddings = patched
def cap(student, student_dir, setup, ids):
    report(name, student); raise SystemExit(0)
distil._check_round_trip = cap
edgepack.build(target="android-arm64", out=Path(cache) / "out", cache_dir=cache)
