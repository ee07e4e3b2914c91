"""The default android-arm64 build with one change patched in; stops after training and scores the fp32
student on STS-B dev (imports edgepack). Research only: the cache key does not see the patch, so give each
run its own cache (copy the teacher-outputs-* entries of ~/.cache/edgepack into it to skip the teacher pass).

    python bench/exploration/patched_build.py hybrid K R CACHE   # hybrid_lookup.md
    python bench/exploration/patched_build.py mse W CACHE        # loss_weight.md: train.MSE_WEIGHT = W
    python bench/exploration/patched_build.py extra FILE CACHE   # forum_text.md: FILE's lines join the built-in text;
                                                                 # builds the bundle CACHE/out (score_bundles.py)
    python bench/exploration/patched_build.py dropout P CACHE    # dropout.md: the student trains with dropout P
    python bench/exploration/patched_build.py eval STUDENT_DIR   # a saved student, in its own tokenizer
"""
import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import baselines as B  # noqa: E402  (STS-B reading and Spearman, as the benchmarks compute them)
from edgepack.modeling import load_hf_model, run_torch, wrap  # noqa: E402
from edgepack.teacher import builtin_model_path  # noqa: E402
from edgepack.tokenizer import load_tokenizer  # noqa: E402

torch.set_num_threads(int(__import__("os").environ.get("OMP_NUM_THREADS", "2")))
pairs = B.read_stsb(B.default_stsb(), None)
sents = sorted({s for a, b, _ in pairs for s in (a, b)})
index = {s: i for i, s in enumerate(sents)}


def embed(model, tokenizer_dir: Path):
    """Normalised mean-pooled embeddings of the dev sentences, tokenised as the runtime does (128 tokens)."""
    head = wrap(model.float().eval(), "sentence-embedding", "bert")
    return run_torch(head, load_tokenizer(tokenizer_dir), sents, 128, batch_size=64)


T = embed(load_hf_model(builtin_model_path(), "sentence-embedding"), builtin_model_path())
teacher_spearman = B.spearman(T, index, pairs)


def report(name, model, tokenizer_dir=builtin_model_path()):
    E = embed(model, tokenizer_dir)
    c = (E * T).sum(1)
    by_genre = ", ".join(f"{g} {v:.4f}" for g, v in B.cosine_by_genre(c, index, pairs).items())
    print(f"RESULT {name}: STS-B dev {100 * B.spearman(E, index, pairs) / teacher_spearman:.2f}% of the teacher, "
          f"cosine mean {c.mean():.4f} min {c.min():.4f} ({by_genre})", flush=True)


if sys.argv[1] == "eval":  # a saved student, in its own tokenizer
    report(sys.argv[2], load_hf_model(Path(sys.argv[2]), "sentence-embedding"), Path(sys.argv[2]))
    sys.exit(0)

import edgepack
from edgepack.families import FAMILIES, set_attr
from edgepack.student import distil, embedding, layers, train

mode = sys.argv[1]
if mode == "hybrid":
    K, R, cache = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    name = f"hybrid K{K} R{R}"
elif mode == "extra":
    extra_lines, cache = Path(sys.argv[2]).read_text(encoding="utf-8").splitlines(), sys.argv[3]
    name = f"built-in text + {len(extra_lines)} lines of {Path(sys.argv[2]).name}"
    import edgepack.data as data_mod

    captions = data_mod.captions_corpus
    data_mod.captions_corpus = lambda: captions() + extra_lines
elif mode == "dropout":  # every dropout of the student (hidden, attention, classifier) set to P while it trains
    P, cache = float(sys.argv[2]), sys.argv[3]
    name = f"dropout {P:g}"
    distil_fn = train.distil

    # Through the product's own [student] dropout (train.set_dropout, applied by train.distil from the setup). The
    # first run, before that setting existed, set the same modules in this wrapper; edgepack now applies the
    # profile's value inside distil, which a module-level patch here would not survive.
    def with_dropout(student, setup, *args, **kwargs):
        return distil_fn(student, dataclasses.replace(setup, dropout=P), *args, **kwargs)

    train.distil = with_dropout
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
if mode != "extra":  # "extra" builds the whole bundle (CACHE/out), to be scored like the benchmark's
    distil._check_round_trip = cap
edgepack.build(target="android-arm64", out=Path(cache) / "out", cache_dir=cache)
