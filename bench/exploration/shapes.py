"""Student shapes: layer subset + head/FFN pruning + factorised embedding; importance scores."""
import copy
import torch
import torch.nn as nn
import torch.nn.functional as F
from common import subset_model, tokenizer, mean_pool
from lowrank import factorize_embeddings


def prune_ffn(layer, keep_idx):
    keep_idx = torch.as_tensor(sorted(keep_idx))
    inter, out = layer.intermediate.dense, layer.output.dense
    new_in = nn.Linear(inter.in_features, len(keep_idx))
    new_in.weight.data = inter.weight.data[keep_idx].clone(); new_in.bias.data = inter.bias.data[keep_idx].clone()
    new_out = nn.Linear(len(keep_idx), out.out_features)
    new_out.weight.data = out.weight.data[:, keep_idx].clone(); new_out.bias.data = out.bias.data.clone()
    layer.intermediate.dense, layer.output.dense = new_in, new_out


def head_importance_magnitude(layer, n_heads=12):
    a = layer.attention
    dh = a.self.query.weight.shape[0] // n_heads
    wo = a.output.dense.weight.view(-1, n_heads, dh)  # out × heads × dh
    wv = a.self.value.weight.view(n_heads, dh, -1)
    return torch.stack([wo[:, h].norm() * wv[h].norm() for h in range(n_heads)])


def ffn_importance_magnitude(layer):
    return layer.intermediate.dense.weight.norm(dim=1) * layer.output.dense.weight.norm(dim=0)


def taylor_importance(model, sents, t_emb, bs=32, max_len=128):
    """First-order (gradient × activation) importance of heads and FFN neurons for the loss
    1 - cos(student pooled, teacher pooled), accumulated over `sents`."""
    tok = tokenizer()
    L = len(model.encoder.layer)
    n_heads = model.config.num_attention_heads
    head_mask = torch.ones(L, n_heads, requires_grad=True)
    acts = {}
    hooks = []
    for i, layer in enumerate(model.encoder.layer):
        def hook(mod, inp, out, i=i):
            out.retain_grad(); acts[i] = out
        hooks.append(layer.intermediate.register_forward_hook(hook))
    ffn_imp = [torch.zeros(l.intermediate.dense.out_features) for l in model.encoder.layer]
    head_imp = torch.zeros(L, n_heads)
    model.train(False)
    for i in range(0, len(sents), bs):
        b = tok(sents[i:i + bs], padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        h = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], head_mask=head_mask).last_hidden_state
        e = F.normalize(mean_pool(h, b["attention_mask"]), dim=-1)
        loss = (1 - (e * t_emb[i:i + bs]).sum(-1)).sum()
        model.zero_grad(); head_mask.grad = None
        loss.backward()
        head_imp += head_mask.grad.abs()
        m = b["attention_mask"].unsqueeze(-1)
        for j in range(L):
            ffn_imp[j] += ((acts[j] * acts[j].grad) * m).sum((0, 1)).abs()
    for hk in hooks:
        hk.remove()
    return head_imp, ffn_imp


def make_student(teacher, layers, heads_keep=12, ffn_keep=1536, rank=None, importance="magnitude",
                 imp_data=None):
    """heads_keep / ffn_keep: per-layer counts (int = same for every layer). importance: 'magnitude'
    or 'taylor' (needs imp_data=(sents, teacher_emb))."""
    m = subset_model(teacher, layers)
    L = len(layers)
    hk = [heads_keep] * L if isinstance(heads_keep, int) else list(heads_keep)
    fk = [ffn_keep] * L if isinstance(ffn_keep, int) else list(ffn_keep)
    if importance == "taylor" and (min(hk) < 12 or min(fk) < 1536):
        h_imp, f_imp = taylor_importance(m, *imp_data)
    else:
        h_imp = torch.stack([head_importance_magnitude(l) for l in m.encoder.layer])
        f_imp = [ffn_importance_magnitude(l) for l in m.encoder.layer]
    heads_to_prune = {}
    for i, layer in enumerate(m.encoder.layer):
        if hk[i] < 12:
            order = h_imp[i].argsort()  # ascending
            heads_to_prune[i] = order[: 12 - hk[i]].tolist()
        if fk[i] < layer.intermediate.dense.out_features:
            prune_ffn(layer, f_imp[i].argsort(descending=True)[: fk[i]].tolist())
    if heads_to_prune:
        m.prune_heads(heads_to_prune)
    if rank:
        factorize_embeddings(m, rank)
    return m


def count_params(m):
    emb = sum(p.numel() for p in m.embeddings.parameters())
    enc = sum(p.numel() for p in m.encoder.parameters())
    return emb, enc
