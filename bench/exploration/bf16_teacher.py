"""The built-in teacher over 2,000 built-in texts, float32 vs bfloat16 autocast: time, and cosine between the two."""
import time, torch, sys
from edgepack.teacher import builtin_model_path
from edgepack.modeling import load_hf_model
from edgepack.student import train
from edgepack.tokenizer import load_tokenizer, tokenizer_spec
from edgepack.data import general_corpus, captions_corpus
p = builtin_model_path()
m = load_hf_model(p, "sentence-embedding").eval()
texts = (general_corpus()[:1500] + captions_corpus()[:500])
setup = train.Setup(task="sentence-embedding", family="bert", pooling="mean", max_length=128)
ids = train.tokenize(load_tokenizer(tokenizer_spec(p)), texts, 128)
t = time.perf_counter(); a = train.teacher_outputs(m, setup, ids)["embedding"]; ta = time.perf_counter() - t
t = time.perf_counter()
b = train.teacher_outputs(m, train.Setup(**{**setup.__dict__, "precision": "bf16"}), ids)["embedding"]  # autocast inside
tb = time.perf_counter() - t
c = torch.nn.functional.cosine_similarity(a, b, dim=-1)
print(f"fp32 {ta:.1f}s bf16 {tb:.1f}s cos mean {c.mean():.6f} min {c.min():.6f}; rel mse {((a-b)**2).mean()/(a**2).mean():.2e}")
