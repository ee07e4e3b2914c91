"""Frequency-weighted SVD of the word-embedding table, untrained (see frequency_svd.md).

    python bench/exploration/frequency_svd.py [RANK]   # default 96; ~1 min on 2 cores

Unlike the other scripts here it imports edgepack (the student helpers); STS-B dev from ../shared/data."""
import csv, sys, numpy as np, torch, collections, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
torch.set_num_threads(2)
from scipy.stats import spearmanr
from edgepack.teacher import builtin_model_path
from edgepack.modeling import load_hf_model, pooled
from edgepack.student import layers, embedding
from edgepack.tokenizer import load_tokenizer, tokenizer_spec
from edgepack.data import general_corpus, builtin_corpus
rows = list(csv.reader(open(Path(__file__).resolve().parents[3] / "shared" / "data" / "stsb" / "dev.tsv", encoding="utf-8"), delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
sents = sorted({s for r in rows for s in r[1:3]}); idx = {s: i for i, s in enumerate(sents)}
gold = [float(r[0]) for r in rows]
def sp(e): return spearmanr([float(e[idx[a]] @ e[idx[b]]) for _, a, b in rows], gold).correlation
path = builtin_model_path()
teacher = load_hf_model(path, "sentence-embedding").eval()
tok = load_tokenizer(tokenizer_spec(path)); tok.no_padding(); tok.enable_truncation(128)
dev_ids = [e.ids for e in tok.encode_batch(sents)]
@torch.no_grad()
def embed(m):
    out = np.zeros((len(sents), 384), np.float32)
    order = sorted(range(len(sents)), key=lambda i: len(dev_ids[i]))
    for s in range(0, len(order), 64):
        ix = order[s:s+64]; L = max(len(dev_ids[i]) for i in ix)
        ids = torch.zeros(len(ix), L, dtype=torch.long); mask = torch.zeros_like(ids)
        for r, i in enumerate(ix): ids[r,:len(dev_ids[i])] = torch.tensor(dev_ids[i]); mask[r,:len(dev_ids[i])] = 1
        e = torch.nn.functional.normalize(pooled(m, ids, mask, "mean", True), dim=-1)
        out[ix] = e.numpy()
    return out
T = embed(teacher); ts = sp(T)  # the teacher's own pooling (mean) and normalisation, as sentence-transformers
def report(name, m):
    E = embed(m); c = (E*T).sum(1); print(f"{name}: {100*sp(E)/ts:.2f}% cos {c.mean():.4f} min {c.min():.4f}", flush=True)
t0=time.time()
corpus = builtin_corpus() + general_corpus()
counts = np.zeros(30522)
for e in tok.encode_batch(corpus):
    for i in e.ids: counts[i] += 1
print("tokenised corpus", time.time()-t0, "distinct", (counts>0).sum(), flush=True)
E = layers.word_embeddings(teacher, "bert").weight.data.float()
base = layers.layer_subset(teacher, "bert", [0,4,5])
report("full table", base)
R = int(sys.argv[1]) if len(sys.argv) > 1 else 96
def install(A, B):
    m = layers.layer_subset(teacher, "bert", [0,4,5])
    embedding.factorise_word_embeddings(m, "bert", R)
    t = layers.word_embeddings(m, "bert")
    t.lookup.weight.data.copy_(A); t.project.weight.data.copy_(B.T)
    return m
a, b = embedding.svd_factors(E, R); report(f"plain svd r{R}", install(a, b))
for alpha, power in ((1.0, 0.5), (10.0, 0.25), (10.0, 0.5), (10.0, 0.75), (10.0, 1.0), (100.0, 0.5), (100.0, 0.75), (100.0, 1.0)):
  w = torch.tensor((counts + alpha) ** power, dtype=torch.float32)
  _, s, vh = torch.linalg.svd(E * w[:, None], full_matrices=False)
  V = vh[:R]
  A = E @ V.T
  sc = A.norm(dim=0).sqrt()
  report(f"weighted a={alpha} p={power}", install(A / sc, sc[:, None] * V))
