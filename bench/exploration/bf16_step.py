"""A MiniLM-shaped 3-layer BERT training step (batch 32, L tokens), float32 vs bfloat16 autocast, ms per step.
usage: bf16_step.py [L]"""
import time, torch, sys
from transformers import BertConfig, BertModel
torch.manual_seed(0)
cfg = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=3, num_attention_heads=12, intermediate_size=1536)
m = BertModel(cfg).train()
opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
L = int(sys.argv[1]) if len(sys.argv) > 1 else 20
ids = torch.randint(1000, 20000, (32, L)); mask = torch.ones_like(ids)
def step(bf):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf):
        out = m(input_ids=ids, attention_mask=mask).last_hidden_state.mean(1)
    loss = out.float().pow(2).mean()
    loss.backward(); opt.step(); opt.zero_grad()
for bf in (False, True, False, True):
    for _ in range(3): step(bf)
    t = time.perf_counter()
    for _ in range(20): step(bf)
    print("bf16" if bf else "fp32", L, round((time.perf_counter() - t) / 20 * 1000, 1), "ms/step", torch.get_num_threads())
