"""Q3: distil a layer-subset student (optionally low-rank embedding) on cached teacher outputs.

Clock: only training steps count toward --budget (teacher caching and evals are timed separately).
Evaluates every --eval-every seconds of training on the held-out corpus slice (proxy, used to pick the
best checkpoint, step 0 included) and on STS-B dev (reporting only).
"""
import argparse, copy, json, math, random, re, time
import torch
import torch.nn.functional as F
from transformers.utils import logging
logging.set_verbosity_error()
from common import *
from shapes import make_student, count_params

p = argparse.ArgumentParser()
p.add_argument("--name", required=True)
p.add_argument("--layers", default="0,1,5")
p.add_argument("--rank", type=int, default=0)
p.add_argument("--heads", type=int, default=12)
p.add_argument("--ffn", type=int, default=1536)
p.add_argument("--emb", default="B", help="which embedding params train: none | B | AB | all (also pos/LN)")
p.add_argument("--loss", default="mse+cos", help="'+'-joined of: mse (pooled, unnormalised), cos, tok (final hidden per token), mid (mapped layers)")
p.add_argument("--tok-w", type=float, default=1.0)
p.add_argument("--lr", type=float, default=3e-4)
p.add_argument("--bs", type=int, default=32)
p.add_argument("--max-len", type=int, default=64)
p.add_argument("--data", default="corpus", help="corpus | corpus+aug | general | general+corpus")
p.add_argument("--n-general", type=int, default=6000, help="random sample of general.txt")
p.add_argument("--budget", type=float, default=180, help="training seconds")
p.add_argument("--eval-every", type=float, default=30)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--warmup", type=float, default=0.06)
args = p.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(args.seed); random.seed(args.seed)
layers = [int(x) for x in args.layers.split(",")]
losses = set(args.loss.split("+"))


# ---------------------------------------------------------------- data
def augment(sents, n_extra, seed=0):
    """Cheap text augmentation: concatenations of two sentences, random spans, word dropout, lowercasing."""
    rng = random.Random(seed)
    out = []
    for _ in range(n_extra):
        s = rng.choice(sents); w = s.split()
        k = rng.random()
        if k < 0.3:
            out.append(s + " " + rng.choice(sents))
        elif k < 0.55 and len(w) > 3:
            i = rng.randrange(len(w) - 2); j = rng.randrange(i + 2, len(w) + 1); out.append(" ".join(w[i:j]))
        elif k < 0.8 and len(w) > 3:
            out.append(" ".join(x for x in w if rng.random() > 0.2) or s)
        else:
            out.append(s.lower() if rng.random() < 0.5 else s.upper())
    return out


train_s, val_s = corpus_split()
if args.data.startswith("general"):
    g = [l.strip() for l in GENERAL.read_text(encoding="utf-8").splitlines() if l.strip() and not l.startswith("#")]
    random.Random(0).shuffle(g)
    train_s = g[:args.n_general] + (train_s if "corpus" in args.data else [])
if "aug" in args.data:
    train_s = train_s + augment(train_s, 3 * len(train_s))
print(f"train sentences: {len(train_s)}", flush=True)


# ---------------------------------------------------------------- teacher cache
T = load_teacher()
tok = tokenizer()
t_layer_idx = layers  # student layer i <-> teacher layer layers[i] output (hidden_states[layers[i]+1])
need_hidden = bool(losses & {"tok", "mid"})
cache_f = CACHE / f"train_{args.data}{args.n_general if args.data.startswith('general') else ''}_{args.max_len}_{'h' if need_hidden else 'p'}.pt"
t0 = time.time()
if cache_f.exists():
    C = torch.load(cache_f)
else:
    torch.set_num_threads(max(args.threads, 1))
    C = {"pooled": torch.empty(len(train_s), 384), "hid": {}}
    order = sorted(range(len(train_s)), key=lambda i: len(train_s[i]))
    with torch.no_grad():
        for i in range(0, len(train_s), 128):
            idx = order[i:i + 128]
            b = tok([train_s[j] for j in idx], padding=True, truncation=True, max_length=args.max_len, return_tensors="pt")
            o = T(**b, output_hidden_states=need_hidden)
            C["pooled"][idx] = mean_pool(o.last_hidden_state, b["attention_mask"])
            if need_hidden:
                for r, j in enumerate(idx):
                    n = int(b["attention_mask"][r].sum())
                    C["hid"][j] = torch.stack([o.hidden_states[l][r, :n] for l in range(1, 7)]).half()  # 6 × n × 384
    torch.save(C, cache_f)
teacher_s = time.time() - t0
print(f"teacher cache: {teacher_s:.1f}s", flush=True)

# ---------------------------------------------------------------- student
S = make_student(T, layers, args.heads, args.ffn, args.rank or None)
emb_p, enc_p = count_params(S)
for n, prm in S.embeddings.named_parameters():
    if args.emb == "none":
        prm.requires_grad = False
    elif args.emb == "B":
        prm.requires_grad = n.endswith("word_embeddings.B")
    elif args.emb == "AB":
        prm.requires_grad = "word_embeddings" in n
    else:
        prm.requires_grad = True
params = [q for q in S.parameters() if q.requires_grad]
opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
ev = Evaluator(val_s)

# steps are unknown up front (time budget): estimate from a short timing run, then linear decay
# over the estimated total. Schedule is re-estimated at each eval.
def lr_at(frac):
    w = args.warmup
    return args.lr * (frac / w if frac < w else max(0.0, (1 - frac) / (1 - w)))


def batch_loss(idx):
    b = tok([train_s[j] for j in idx], padding=True, truncation=True, max_length=args.max_len, return_tensors="pt")
    mask = b["attention_mask"]
    o = S(**b, output_hidden_states="mid" in losses)
    h = o.last_hidden_state
    e = mean_pool(h, mask)
    te = C["pooled"][idx]
    loss = 0.0
    parts = {}
    if "mse" in losses:
        parts["mse"] = F.mse_loss(e, te) * 10  # pooled MSE; scale so it is comparable to 1-cos
    if "cos" in losses:
        parts["cos"] = (1 - F.cosine_similarity(e, te)).mean()
    if "tok" in losses or "mid" in losses:
        n = h.shape[1]
        m = mask.unsqueeze(-1).float()
        def pad(j, l):
            x = C["hid"][j][l].float()
            return F.pad(x, (0, 0, 0, n - x.shape[0]))
        if "tok" in losses:
            th = torch.stack([pad(j, 5) for j in idx])
            parts["tok"] = args.tok_w * (((h - th) ** 2) * m).sum() / (m.sum() * 384)
        if "mid" in losses:
            mid = 0
            for i, l in enumerate(layers[:-1]):
                th = torch.stack([pad(j, l) for j in idx])
                mid = mid + (((o.hidden_states[i + 1] - th) ** 2) * m).sum() / (m.sum() * 384)
            parts["mid"] = args.tok_w * mid / max(1, len(layers) - 1)
    return sum(parts.values()), parts


curve = []
def evaluate(step, train_t):
    r = {k: float(v) for k, v in ev(S).items()}
    r.update(step=step, train_s=train_t)
    curve.append(r)
    print(json.dumps(r), flush=True)
    return r

best = evaluate(0, 0.0); best_state = copy.deepcopy(S.state_dict())
step, train_t, next_eval = 0, 0.0, args.eval_every
rng = random.Random(args.seed)
perm = []
est_total = None
S.train()
while train_t < args.budget:
    if len(perm) < args.bs:
        perm = list(range(len(train_s))); rng.shuffle(perm)
    idx, perm = perm[:args.bs], perm[args.bs:]
    t0 = time.perf_counter()
    frac = train_t / args.budget
    for g in opt.param_groups:
        g["lr"] = lr_at(frac)
    S.train()
    loss, parts = batch_loss(idx)
    opt.zero_grad(); loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    step += 1
    train_t += time.perf_counter() - t0
    if step % 20 == 0:
        print(f"step {step} t={train_t:.0f}s loss={loss.item():.4f} " + " ".join(f"{k}={v.item():.4f}" for k, v in parts.items()), flush=True)
    if train_t >= next_eval or train_t >= args.budget:
        r = evaluate(step, train_t)
        next_eval += args.eval_every
        if r["proxy_cos"] > best["proxy_cos"]:
            best = r; best_state = copy.deepcopy(S.state_dict())

final = curve[-1]
best_dev = max(curve, key=lambda r: r["pct_teacher"])
res = dict(args=vars(args), n_train=len(train_s), teacher_cache_s=teacher_s, emb_params=emb_p, enc_params=enc_p,
           steps=step, steps_per_s=step / train_t, sent_per_s=step * args.bs / train_t,
           final=final, best_by_proxy=best, best_by_dev=best_dev, curve=curve)
dump(f"q3_{args.name}", res)
torch.save(best_state, CACHE / f"student_{args.name}.pt")
print("RESULT", json.dumps({k: res[k] for k in ("steps", "steps_per_s")}), "final", json.dumps(final), "best_proxy", json.dumps(best), flush=True)
