"""Vocabulary pruning: keep the wordpieces a corpus needs, rewrite tokenizer.json and the embedding rows together.

Word embeddings are half of MiniLM's parameters (30522 x 384). Most rows are never used by one
application's text. We keep, in this order of priority:

1. special tokens ([PAD] [UNK] [CLS] [SEP] [MASK] and any added tokens);
2. every single character and its `##` continuation, so any word made of known characters still
   splits into pieces instead of becoming [UNK] (WordPiece falls back to shorter pieces);
3. the wordpieces the corpus uses, most frequent first;
4. up to `size`, the remaining teacher wordpieces by id: BERT's vocabulary lists whole words roughly
   by frequency after its single characters, so low ids are the common words.

New ids follow the old order, so specials keep their relative positions. The tokenizer rewrite maps
every id the JSON mentions (vocab, added tokens, post-processor templates, padding).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import torch

from ..families import FAMILIES, get_attr, set_attr
from ..measure.tokenization import coverage  # noqa: F401  (the report's figure; lives with the measuring code)
from ..tokenizer import load_tokenizer


@dataclass(frozen=True)
class VocabPlan:
    keep_ids: tuple[int, ...]  # old ids, ascending; new id = position in this tuple
    old_size: int

    @property
    def new_size(self) -> int:
        return len(self.keep_ids)

    def old_to_new(self) -> dict[int, int]:
        return {old: new for new, old in enumerate(self.keep_ids)}


def _is_unused(token: str) -> bool:
    return token.startswith("[unused") and token.endswith("]")


# Why vocabulary pruning is refused for the other tokenizer types (issue #13).
NOT_PRUNABLE = {
    # Every merge names two tokens and makes a third: dropping a token that a merge passes through
    # changes how the words that need it split, not just their ids, and the byte alphabet must stay.
    "BPE": "a byte-level BPE vocabulary is tied to its merge list; dropping tokens would change how words split "
           "(use embedding_rank to shrink the table and keep every token)",
    # Unigram picks the most probable segmentation over all pieces: with pieces gone, text segments
    # differently from the teacher everywhere, not only where a removed piece was used.
    "Unigram": "a Unigram model segments each word by the scores of all its pieces; dropping pieces changes "
               "segmentations (use embedding_rank to shrink the table and keep every piece)",
}


def require_prunable(tokenizer_json: dict) -> None:
    """One clear line when the profile asks to prune a vocabulary that cannot be pruned safely."""
    from ..errors import ModelError

    kind = (tokenizer_json.get("model") or {}).get("type")
    if kind != "WordPiece":
        reason = NOT_PRUNABLE.get(kind, "only WordPiece vocabularies can be pruned")
        raise ModelError(f"vocabulary pruning is not supported for {kind} tokenizers: {reason}")


def plan(tokenizer_json: dict, texts, size: int = 0) -> VocabPlan:
    """Choose the ids to keep for `texts` (tokenised with the teacher's tokenizer)."""
    return plans(tokenizer_json, texts, (size,))[0]


def plans(tokenizer_json: dict, texts, sizes) -> list[VocabPlan]:
    """`plan` for each of `sizes`, tokenising `texts` once (the shape search plans several vocabularies)."""
    model = tokenizer_json["model"]
    if model.get("type") != "WordPiece":
        raise ValueError(f"vocabulary pruning supports WordPiece tokenizers, not {model.get('type')}")
    vocab: dict[str, int] = model["vocab"]
    tok = load_tokenizer(tokenizer_json)
    tok.no_padding()
    tok.no_truncation()
    counts: Counter[int] = Counter()
    for enc in tok.encode_batch(list(texts), add_special_tokens=False):
        counts.update(enc.ids)
    prefix = model.get("continuing_subword_prefix", "##")
    specials = {a["id"] for a in tokenizer_json.get("added_tokens", [])}
    specials |= {vocab[t] for t in (model.get("unk_token", "[UNK]"),) if t in vocab}
    chars = {i for t, i in vocab.items() if len(t) == 1 or (t.startswith(prefix) and len(t) == len(prefix) + 1)}
    by_count = [i for i, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    by_id = [i for t, i in sorted(vocab.items(), key=lambda kv: kv[1]) if not _is_unused(t)]
    return [_choose(sorted(specials) + sorted(chars - specials), by_count, by_id, size, len(vocab)) for size in sizes]


def _choose(keep: list[int], by_count: list[int], by_id: list[int], size: int, old_size: int) -> VocabPlan:
    """Specials and characters (`keep`), then the corpus's wordpieces most frequent first, then (up to
    `size`) the teacher's remaining wordpieces by id."""
    chosen = set(keep)
    for i in by_count:
        if size and len(keep) >= size:
            break
        if i not in chosen:
            keep.append(i)
            chosen.add(i)
    if size:
        for i in by_id:
            if len(keep) >= size:
                break
            if i not in chosen:
                keep.append(i)
                chosen.add(i)
    return VocabPlan(keep_ids=tuple(sorted(chosen)), old_size=old_size)


def rewrite_tokenizer_json(tokenizer_json: dict, vocab_plan: VocabPlan) -> dict:
    """The same tokenizer with the pruned vocabulary and every id remapped."""
    spec = json.loads(json.dumps(tokenizer_json))  # deep copy
    old_to_new = vocab_plan.old_to_new()
    vocab = spec["model"]["vocab"]
    spec["model"]["vocab"] = {t: old_to_new[i] for t, i in sorted(vocab.items(), key=lambda kv: kv[1]) if i in old_to_new}
    new_vocab = spec["model"]["vocab"]
    added = []
    for a in spec.get("added_tokens", []):
        if a["id"] in old_to_new:
            added.append({**a, "id": old_to_new[a["id"]]})
    spec["added_tokens"] = added
    post = spec.get("post_processor") or {}
    for processor in [post] + list(post.get("processors", [])):
        for name, entry in (processor.get("special_tokens") or {}).items():
            entry["ids"] = [new_vocab[t] for t in entry.get("tokens", [])]
        for key in ("cls", "sep"):  # BertProcessing stores [token, id] pairs
            if isinstance(processor.get(key), list) and len(processor[key]) == 2:
                processor[key] = [processor[key][0], new_vocab[processor[key][0]]]
    padding = spec.get("padding")
    if padding and padding.get("pad_token") in new_vocab:
        padding["pad_id"] = new_vocab[padding["pad_token"]]
    return spec


def shrink_word_embeddings(model, family: str, vocab_plan: VocabPlan) -> None:
    """Keep only the planned rows of the word-embedding matrix (order = new ids)."""
    fam = FAMILIES[family]
    emb = get_attr(model.base_model, fam.word_embeddings)
    pad = getattr(emb, "padding_idx", None)
    if fam.positions_after_padding and pad is not None and vocab_plan.old_to_new().get(pad) != pad:
        # RoBERTa-style position ids are counted from padding_idx (families.position_offset); a moved
        # <pad> would shift every position. Specials come first in fairseq vocabularies, so this is rare.
        from ..errors import ModelError

        raise ModelError(f"vocabulary pruning is not supported for this {fam.name} vocabulary: it would move the padding token (id {pad})")
    index = torch.tensor(vocab_plan.keep_ids, dtype=torch.long)
    new = torch.nn.Embedding(len(index), emb.embedding_dim, padding_idx=None)
    new.weight.data.copy_(emb.weight.data.index_select(0, index))
    pad = getattr(emb, "padding_idx", None)
    if pad is not None and pad in vocab_plan.old_to_new():
        new.padding_idx = vocab_plan.old_to_new()[pad]
    set_attr(model.base_model, fam.word_embeddings, new)
    setattr(model.config, fam.vocab_key, len(index))
    if getattr(model.config, "pad_token_id", None) is not None and model.config.pad_token_id in vocab_plan.old_to_new():
        model.config.pad_token_id = vocab_plan.old_to_new()[model.config.pad_token_id]
