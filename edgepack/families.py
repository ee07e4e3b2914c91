"""Per-architecture facts, described once (Torch-Pruning / TextPruner style).

Everything that prunes, slices or exports a model asks this table where the parts are,
instead of hard-coding `model.encoder.layer` in several places.
"""

from __future__ import annotations

import dataclasses
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
    # Added for issue #13 (RoBERTa, XLM-R, MPNet).
    name: str = ""  # how a one-line message names the family
    # RoBERTa-style position ids start at padding_idx + 1 (fairseq's convention, kept by HF's
    # create_position_ids_from_input_ids): a model of N positions has N + padding_idx + 1 rows.
    positions_after_padding: bool = False
    # Steps this family cannot take, with the reason: the build refuses them in one line (`require`).
    cannot: tuple[tuple[str, str], ...] = ()


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
    name="BERT",
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
    name="DistilBERT",
)

# RoBERTa and XLM-RoBERTa are BERT's blocks with fairseq's position ids; their single token type
# is all zeros, which the model builds itself, so it is not a graph input. Their positions count from
# padding_idx + 1 and the model computes them from the input ids itself, so a multi-signature export
# must not pass BERT's 0..n-1 (position_ids_input; every embedding was wrong when it was inherited).
ROBERTA = dataclasses.replace(BERT, model_types=("roberta",), uses_token_type_ids=False, name="RoBERTa",
                              positions_after_padding=True, position_ids_input=False)
XLM_ROBERTA = dataclasses.replace(ROBERTA, model_types=("xlm-roberta",), name="XLM-RoBERTa")

# MPNet keeps BERT's layer layout and RoBERTa's position ids (padding_idx is fixed at 1, so positions start
# at 2; no token types at all); only its attention module is named differently.
MPNET = dataclasses.replace(
    ROBERTA,
    model_types=("mpnet",),
    q="attention.attn.q",
    k="attention.attn.k",
    v="attention.attn.v",
    attn_out="attention.attn.o",
    name="MPNet",
    cannot=(
        # MPNetEncoder computes one relative position bias [heads] shared by every layer, and HF's
        # MPNetAttention.prune_heads does not slice it: a pruned layer would add the wrong heads' bias.
        ("head pruning", "its relative position bias is shared by all layers and has one column per head"),
    ),
)

# MiniLM checkpoints (all-MiniLM-L6-v2 among them) are model_type "bert".
FAMILIES = {"bert": BERT, "distilbert": DISTILBERT, "roberta": ROBERTA, "xlm-roberta": XLM_ROBERTA, "mpnet": MPNET}


def supported_names() -> str:
    return ", ".join(["BERT", "MiniLM"] + [f.name for k, f in FAMILIES.items() if k != "bert"])


def position_offset(family: str, config: dict) -> int:
    """Position-table rows before the first real position: 0 for BERT, padding_idx + 1 for RoBERTa-style
    models (MPNet's padding_idx is hard-coded to 1 in HF's MPNetEmbeddings)."""
    if not FAMILIES[family].positions_after_padding:
        return 0
    pad = 1 if family == "mpnet" else config.get("pad_token_id", 1)
    return int(pad if pad is not None else 1) + 1


def require(family: str, step: str) -> None:
    """Refuse, in one line naming the step and the family, a step this family cannot take."""
    from .errors import ModelError

    fam = FAMILIES[family]
    for name, reason in fam.cannot:
        if name == step:
            raise ModelError(f"{step} is not supported for {fam.name} models: {reason}")


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
