"""Torch-side helpers: load a local HF model safely, and the one forward-and-pool that both training
(student/train.py) and the exported graph use, so what is distilled is what ships.

The exported graph returns `embedding` [batch, dim] (pooled and L2-normalised inside the graph) or
`logits` [batch, labels], so every runtime (Python wrapper, Android app) does the same thing.
The head classes keep this module's name: litert-torch writes `edgepack.modeling.EmbeddingHead`
into every TFLite tensor name, so moving them would change the shipped bytes.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import ModelError
from .families import FAMILIES
from .teacher import DENSE_ACTIVATIONS, weights_dir


def model_inputs(input_ids, attention_mask, token_type_ids: bool, head_mask=None, ids_from_input: bool = False) -> dict:
    kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
    if token_type_ids:
        # Single-text inputs: segment ids are all zero, so they are built in-graph, not an input.
        kwargs["token_type_ids"] = torch.zeros_like(input_ids)
    if ids_from_input:
        # Static-shape export with one signature per bucket (issue #12): segment and position ids made
        # from the input are not folded into constants, so every signature looks them up in the ONE
        # shared table, instead of each carrying its own fp32 [1, bucket, hidden] slice of the position
        # table and broadcast of the segment row (0.69 MB of an 8.5 MB student at buckets 32/64/128).
        # Same values as the model's defaults: segment 0, positions 0..n-1.
        ones = (input_ids >= 0).to(input_ids.dtype)  # all ones, but computed: nothing to fold
        kwargs["position_ids"] = ones.cumsum(1) - 1
        if token_type_ids:
            kwargs["token_type_ids"] = ones - 1
    if head_mask is not None:  # head-importance scoring only (student/prune.py)
        kwargs["head_mask"] = head_mask
    return kwargs


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def max_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sentence-transformers' max pooling: padding set to -1e9 before the max, so it never wins."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m + (1.0 - m) * -1e9).max(dim=1).values


def pooled(model, input_ids, attention_mask, pooling: str, token_type_ids: bool, head_mask=None,
           ids_from_input: bool = False) -> torch.Tensor:
    """The sentence embedding before normalisation: what distillation matches and the graph ships."""
    hidden = model(**model_inputs(input_ids, attention_mask, token_type_ids, head_mask, ids_from_input)).last_hidden_state
    return pool(hidden, attention_mask, pooling)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Token states [batch, seq, dim] -> one vector per text, as sentence-transformers pools."""
    if pooling == "cls":
        return hidden[:, 0]
    return max_pool(hidden, attention_mask) if pooling == "max" else mean_pool(hidden, attention_mask)


def load_dense(path: Path) -> torch.nn.Sequential:
    """A sentence-transformers Dense module (config.json + model.safetensors: linear.weight/bias, then the
    activation) as plain torch, safetensors only."""
    import json

    from safetensors.torch import load_file

    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
        linear = torch.nn.Linear(int(cfg["in_features"]), int(cfg["out_features"]), bias=bool(cfg.get("bias", True)))
        state = load_file(str(path / "model.safetensors"))
        linear.load_state_dict({k.removeprefix("linear."): v for k, v in state.items()}, strict=True)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"{path}: cannot load the Dense module ({type(exc).__name__}: {str(exc)[:200]})") from None
    act = cfg.get("activation_function", "torch.nn.modules.activation.Tanh")  # sentence-transformers' default
    return torch.nn.Sequential(linear, getattr(torch.nn, DENSE_ACTIVATIONS[act])()).eval()


class EmbeddingHead(torch.nn.Module):
    def __init__(self, model, pooling: str = "mean", normalize: bool = True, token_type_ids: bool = True, dense=None,
                 ids_from_input: bool = False):
        super().__init__()
        self.model, self.pooling, self.normalize, self.token_type_ids = model, pooling, normalize, token_type_ids
        self.ids_from_input = ids_from_input  # see model_inputs; set by for_signatures()
        self.token_states = False  # set by with_token_states()
        # Only registered when present: a model without Dense keeps exactly the graph (and TFLite
        # tensor names) it had before issue #13.
        if dense is not None:
            self.dense = dense

    def forward(self, input_ids, attention_mask):
        kwargs = model_inputs(input_ids, attention_mask, self.token_type_ids, ids_from_input=self.ids_from_input)
        hidden = self.model(**kwargs).last_hidden_state
        emb = pool(hidden, attention_mask, self.pooling)
        if hasattr(self, "dense"):
            emb = self.dense(emb)
        if self.normalize:
            emb = torch.nn.functional.normalize(emb, p=2.0, dim=-1)
        return (emb, hidden) if self.token_states else emb


def with_token_states(head: torch.nn.Module) -> torch.nn.Module:
    """The same embedding head (same weights) returning (embedding, last_hidden_state): transformers.js's
    feature-extraction pipeline reads `last_hidden_state` and pools in JavaScript (issue #14), while
    edgepack's runtimes keep reading the pooled `embedding`, the graph's first output."""
    import copy

    out = copy.copy(head)  # a shallow copy shares the submodules (the weights)
    out.token_states = True
    return out


class ClassifierHead(torch.nn.Module):
    def __init__(self, model, token_type_ids: bool = True, ids_from_input: bool = False):
        super().__init__()
        self.model, self.token_type_ids = model, token_type_ids
        self.ids_from_input = ids_from_input  # see model_inputs; set by for_signatures()

    def forward(self, input_ids, attention_mask):
        return self.model(**model_inputs(input_ids, attention_mask, self.token_type_ids,
                                         ids_from_input=self.ids_from_input)).logits


def for_signatures(head: torch.nn.Module, family: str) -> torch.nn.Module:
    """The same head (same weights, same outputs) with position/segment ids computed from the input,
    for a multi-signature TFLite export (model_inputs). Only for families whose forward takes
    `position_ids` with the 0..n-1 meaning (BERT); others are returned as they are."""
    import copy

    if not FAMILIES[family].position_ids_input:
        return head
    out = copy.copy(head)  # a shallow copy shares the submodules (the weights)
    out.ids_from_input = True
    return out


def load_hf_model(path: Path, task: str, allow_pickle: bool = False):
    """Load with safetensors only (never trust_remote_code), eager attention for clean export."""
    from transformers import AutoModel, AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    cls = AutoModelForSequenceClassification if task == "text-classification" else AutoModel
    src = weights_dir(path)
    has_safetensors = any(src.glob("*.safetensors"))
    try:
        if _factorised_rank(src):
            return _load_factorised(cls, src)
        model = cls.from_pretrained(
            src,
            trust_remote_code=False,
            use_safetensors=has_safetensors or not allow_pickle,
            attn_implementation="eager",
            local_files_only=True,
        )
    except ModelError:
        raise
    except Exception as exc:  # transformers raises many types; the user needs one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load model from {src}: {first[:300]}") from None
    return model.eval()


def _factorised_rank(src: Path) -> int:
    import json

    from .student.embedding import CONFIG_KEY

    try:
        return int(json.loads((src / "config.json").read_text(encoding="utf-8")).get(CONFIG_KEY, 0) or 0)
    except (OSError, ValueError, AttributeError):
        return 0  # from_pretrained reports a missing or broken config in its own words


def _load_factorised(cls, src: Path):
    """A student with low-rank word embeddings (student/embedding.py): from_pretrained would see a
    missing `word_embeddings.weight` and initialise it at random, so the shape is rebuilt from the
    config first and the weights are loaded strictly (safetensors only: edgepack wrote them)."""
    from safetensors.torch import load_file
    from transformers import AutoConfig

    from .families import family_for
    from .student.embedding import rebuild_for_loading

    config = AutoConfig.from_pretrained(src, trust_remote_code=False, local_files_only=True)
    model = cls.from_config(config, trust_remote_code=False, attn_implementation="eager")
    rebuild_for_loading(model, family_for(config.model_type))
    state = load_file(str(src / "model.safetensors"))
    model.load_state_dict(state, strict=True)
    return model.eval()


def wrap(model, task: str, family: str, pooling: str = "mean", normalize: bool = True, dense=()) -> torch.nn.Module:
    """The shipped head around `model`; `dense` are the sentence-transformers Dense module directories
    (Teacher.dense), applied after pooling and before normalisation, as sentence-transformers does."""
    tti = FAMILIES[family].uses_token_type_ids
    if task == "text-classification":
        return ClassifierHead(model, token_type_ids=tti).eval()
    projection = torch.nn.Sequential(*(load_dense(Path(d)) for d in dense)) if dense else None
    return EmbeddingHead(model, pooling=pooling, normalize=normalize, token_type_ids=tti, dense=projection).eval()


@torch.no_grad()
def run_torch(head: torch.nn.Module, tokenizer, texts, max_length: int, batch_size: int = 32):
    """Reference outputs in torch, tokenised exactly like the runtime (same tokenizer.json, same truncation)."""
    import numpy as np

    outs = []
    for i in range(0, len(texts), batch_size):
        ids, mask = tokenizer_batch(tokenizer, texts[i : i + batch_size], max_length)
        outs.append(head(torch.from_numpy(ids), torch.from_numpy(mask)).float().numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 0), dtype="float32")


def tokenizer_batch(tokenizer, texts, max_length: int):
    """Tokenise with a `tokenizers.Tokenizer`, pad to the longest; int64 arrays. The runtime's own
    encoder, so torch references see exactly the ids the shipped runtime feeds the model."""
    from .runtime.edgepack_runtime import encode

    return encode(tokenizer, texts, max_length)
