"""How a bundle's tokenizer treats text compared with the teacher's (issue #11): with a pruned vocabulary
(`[student] vocab_prune = true`) a word the kept wordpieces do not cover splits into smaller pieces, so
the student sees token sequences the teacher never did. The build reports the share of validation words
and of whole texts that tokenise differently, and `[budget] max_retokenized_words` gates on it.

Tokens are compared as strings, not ids: a pruned vocabulary renumbers every id, and the same pieces
under new numbers are the same tokenisation. Torch-free (tokenizers only).
"""

from __future__ import annotations

from collections import Counter

from ..tokenizer import load_tokenizer


def _plain(spec: dict):
    tok = load_tokenizer(spec)
    tok.no_padding()
    tok.no_truncation()
    return tok


def unk_token(spec: dict) -> str | None:
    """The unknown token of a tokenizer.json: WordPiece and BPE name it, Unigram gives its id."""
    model = spec.get("model") or {}
    if model.get("type") == "Unigram":
        return model["vocab"][model["unk_id"]][0] if model.get("unk_id") is not None else None
    return model.get("unk_token", "[UNK]" if model.get("type") == "WordPiece" else None)


def coverage(teacher_json: dict, student_json: dict, texts) -> dict:
    """How the student's tokenizer treats `texts` compared with the teacher's.

    token_coverage: share of the teacher's wordpieces (over all occurrences) still in the vocabulary;
    same_tokens: share of texts tokenised identically (retokenized_texts = 1 - same_tokens);
    retokenized_words: share of whitespace-separated words (over all occurrences) split differently;
    unk_rate: [UNK] share of student tokens.
    """
    texts = list(texts)
    if not texts:
        return {"texts": 0}
    t_tok, s_tok = _plain(teacher_json), _plain(student_json)
    # Token strings from the encodings: WordPiece and BPE keep a {token: id} map, Unigram a list.
    s_vocab = s_tok.get_vocab()
    unk = unk_token(student_json)
    kept = total = same = s_total = s_unk = t_unk = 0
    for t_enc, s_enc in zip(t_tok.encode_batch(texts, add_special_tokens=False), s_tok.encode_batch(texts, add_special_tokens=False)):
        total += len(t_enc.ids)
        kept += sum(tok in s_vocab for tok in t_enc.tokens)
        t_unk += sum(tok == unk for tok in t_enc.tokens)
        same += t_enc.tokens == s_enc.tokens
        s_total += len(s_enc.ids)
        s_unk += sum(tok == unk for tok in s_enc.tokens)
    # Words: every whitespace-separated word once per occurrence, each distinct word tokenised once.
    # BERT-style pre-tokenizers split at whitespace first, so a word alone splits as it does in its text.
    words = Counter(w for text in texts for w in text.split())
    distinct = list(words)
    changed = 0
    if distinct:
        pairs = zip(t_tok.encode_batch(distinct, add_special_tokens=False), s_tok.encode_batch(distinct, add_special_tokens=False))
        changed = sum(words[w] for w, (a, b) in zip(distinct, pairs) if a.tokens != b.tokens)
    n_words = sum(words.values())
    return {
        "texts": len(texts),
        "words": n_words,
        "token_coverage": round(kept / max(total, 1), 4),
        "same_tokens": round(same / len(texts), 4),
        "retokenized_texts": round(1 - same / len(texts), 4),
        "retokenized_text_count": len(texts) - same,
        "retokenized_words": round(changed / max(n_words, 1), 4),
        "retokenized_word_count": changed,
        "unk_rate": round(s_unk / max(s_total, 1), 4),
        "teacher_unk_rate": round(t_unk / max(total, 1), 4),
        "tokens_per_text_teacher": round(total / len(texts), 2),
        "tokens_per_text_student": round(s_total / len(texts), 2),
    }
