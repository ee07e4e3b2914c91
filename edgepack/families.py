"""Per-architecture facts, described once (Torch-Pruning / TextPruner style).

Everything that prunes, slices or exports a model asks this table where the parts are,
instead of hard-coding `model.encoder.layer` in several places.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    model_types: tuple[str, ...]
    layers: str  # attribute path from the base model to the list of transformer blocks
    num_layers_key: str  # config key for depth
    num_heads_key: str
    hidden_key: str
    ffn_key: str
    word_embeddings: str  # attribute path from the base model
    # Per block: attribute paths of the attention projections and FFN linears.
    q: str
    k: str
    v: str
    attn_out: str
    ffn_in: str
    ffn_out: str
    uses_token_type_ids: bool
    # Added for issue #4 (students, pruning, vocabulary rewrite).
    position_embeddings: str = "embeddings.position_embeddings"
    # issue #12: forward(position_ids=...) means positions 0..n-1, so a static-shape export may compute
    # them from the input (modeling.for_signatures). DistilBERT's forward takes no position_ids.
    position_ids_input: bool = False
    max_positions_key: str = "max_position_embeddings"
    vocab_key: str = "vocab_size"


BERT = Family(
    model_types=("bert",),
    layers="encoder.layer",
    num_layers_key="num_hidden_layers",
    num_heads_key="num_attention_heads",
    hidden_key="hidden_size",
    ffn_key="intermediate_size",
    word_embeddings="embeddings.word_embeddings",
    q="attention.self.query",
    k="attention.self.key",
    v="attention.self.value",
    attn_out="attention.output.dense",
    ffn_in="intermediate.dense",
    ffn_out="output.dense",
    uses_token_type_ids=True,
    position_ids_input=True,
)

DISTILBERT = Family(
    model_types=("distilbert",),
    layers="transformer.layer",
    num_layers_key="n_layers",
    num_heads_key="n_heads",
    hidden_key="dim",
    ffn_key="hidden_dim",
    word_embeddings="embeddings.word_embeddings",
    q="attention.q_lin",
    k="attention.k_lin",
    v="attention.v_lin",
    attn_out="attention.out_lin",
    ffn_in="ffn.lin1",
    ffn_out="ffn.lin2",
    uses_token_type_ids=False,
)

# MiniLM checkpoints (all-MiniLM-L6-v2 among them) are model_type "bert".
FAMILIES = {"bert": BERT, "distilbert": DISTILBERT}


def family_for(model_type: str) -> str | None:
    for name, fam in FAMILIES.items():
        if model_type in fam.model_types:
            return name
    return None


def get_attr(obj, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def set_attr(obj, dotted: str, value) -> None:
    parent, _, last = dotted.rpartition(".")
    setattr(get_attr(obj, parent) if parent else obj, last, value)
