"""Build a student from the teacher: a subset of its layers with their weights copied (DistilBERT-style).

The student stays a standard Hugging Face model of the teacher's class, so export, ONNX and TFLite
treat it exactly like the teacher. Narrower students come from structured pruning (student/prune.py) and a
smaller vocabulary (student/vocab.py), applied to this one.
"""

from __future__ import annotations

import copy

import torch

from ..families import FAMILIES, get_attr, set_attr


def num_layers(model, family: str) -> int:
    return int(getattr(model.config, FAMILIES[family].num_layers_key))


def pick_layers(teacher_layers: int, student_layers: int) -> list[int]:
    """Evenly spaced teacher layers, always including the last one.

    The last layer is kept because the distillation target is the teacher's final (pooled) output:
    starting from it, the student's output is already close to the teacher's before any training.
    6 -> 3 gives [1, 3, 5] (every other layer, as DistilBERT took from BERT-base).
    """
    if not 1 <= student_layers <= teacher_layers:
        raise ValueError(f"student layers must be in 1..{teacher_layers}, got {student_layers}")
    step = teacher_layers / student_layers
    return sorted({teacher_layers - 1 - int(i * step) for i in range(student_layers)})


def layer_subset(teacher, family: str, layers: list[int]):
    """A deep copy of `teacher` keeping only `layers` (indices into its blocks), config updated."""
    fam = FAMILIES[family]
    student = copy.deepcopy(teacher)
    base = student.base_model
    blocks = get_attr(base, fam.layers)
    set_attr(base, fam.layers, torch.nn.ModuleList([blocks[i] for i in layers]))
    setattr(student.config, fam.num_layers_key, len(layers))
    # Pruned heads are stored per layer index; re-key them for the new positions.
    pruned = getattr(student.config, "pruned_heads", None) or {}
    student.config.pruned_heads = {new: pruned[old] for new, old in enumerate(layers) if old in pruned}
    for new, block in enumerate(get_attr(base, fam.layers)):
        attn = getattr(block, "attention", None)
        if attn is not None and hasattr(getattr(attn, "self", None), "layer_idx"):
            attn.self.layer_idx = new
    return student


def truncate_positions(model, family: str, max_positions: int) -> None:
    """Drop position-embedding rows no input can reach (the bundle never exceeds max_positions)."""
    fam = FAMILIES[family]
    current = int(getattr(model.config, fam.max_positions_key))
    embeddings = model.base_model.embeddings
    # RoBERTa, XLM-R and MPNet number positions from padding_idx + 1 (families.position_offset):
    # their first padding_idx + 1 rows stay, and max_positions real positions follow them.
    offset = int(embeddings.padding_idx) + 1 if fam.positions_after_padding else 0
    rows = max_positions + offset
    if rows >= current:
        return
    emb = get_attr(model.base_model, fam.position_embeddings)
    new = torch.nn.Embedding(rows, emb.embedding_dim, padding_idx=emb.padding_idx)
    new.weight.data.copy_(emb.weight.data[:rows])
    set_attr(model.base_model, fam.position_embeddings, new)
    setattr(model.config, fam.max_positions_key, rows)
    for name in ("position_ids", "token_type_ids"):  # buffers sized to the table (BERT, RoBERTa)
        buf = getattr(embeddings, name, None)
        if isinstance(buf, torch.Tensor):
            embeddings.register_buffer(name, buf[..., :rows].clone(), persistent=False)


def parameter_count(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def word_embeddings(model, family: str) -> torch.nn.Embedding:
    return get_attr(model.base_model, FAMILIES[family].word_embeddings)


def embedding_parameter_count(model, family: str) -> int:
    return int(sum(p.numel() for p in word_embeddings(model, family).parameters()))


def describe(model, family: str, teacher_heads: int, vocab_size: int, embedding_rank: int = 0) -> str:
    fam = FAMILIES[family]
    cfg = model.config
    layers = int(getattr(cfg, fam.num_layers_key))
    heads = int(getattr(cfg, fam.num_heads_key))
    pruned = getattr(cfg, "pruned_heads", None) or {}
    kept = sorted({heads - len(pruned.get(i, ())) for i in range(layers)})
    heads_txt = "/".join(map(str, kept))
    return (
        f"distilled {layers}-layer, {heads_txt}/{teacher_heads} heads, FFN {getattr(cfg, fam.ffn_key)}, "
        f"vocab {vocab_size / 1000:.1f}k{f' (embeddings rank {embedding_rank})' if embedding_rank else ''}, "
        f"{parameter_count(model) / 1e6:.1f}M params"
    )
