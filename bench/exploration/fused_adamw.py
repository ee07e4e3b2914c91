"""Where a distillation step's time goes after the backward pass: gradient clipping and AdamW, for-loop vs
fused (a MiniLM-shaped 3-layer BERT, batch 32, 20 tokens, bfloat16 autocast as the default build trains).
usage: python bench/exploration/fused_adamw.py"""
import time

import torch
from transformers import BertConfig, BertModel

torch.manual_seed(0)
cfg = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=3, num_attention_heads=12, intermediate_size=1536)
m = BertModel(cfg).train()
ids = torch.randint(1000, 20000, (32, 20))
mask = torch.ones_like(ids)
for kw, foreach in (({}, None), ({"fused": True}, None), ({"fused": True}, True)):
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=0.01, **kw)
    clip = step = 0.0
    for i in range(23):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = m(input_ids=ids, attention_mask=mask).last_hidden_state.mean(1)
        out.float().pow(2).mean().backward()
        t0 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0, foreach=foreach)
        t1 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        t2 = time.perf_counter()
        if i >= 3:  # 3 warm-up steps, 20 timed
            clip, step = clip + t1 - t0, step + t2 - t1
    print(f"AdamW {kw or 'for-loop'}, clip foreach={foreach}: clip {clip / 20 * 1e3:.1f} ms, AdamW step {step / 20 * 1e3:.1f} ms")
