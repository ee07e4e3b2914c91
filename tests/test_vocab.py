"""Vocabulary pruning: the rewritten tokenizer and the embedding rows must agree token for token."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer

from edgepack.modeling import load_hf_model
from edgepack.student import vocab
from edgepack.student.train import Setup, collate, forward, tokenize
from edgepack.testing import TINY_SENTENCES
from edgepack.tokenizer import tokenizer_spec

CORPUS = TINY_SENTENCES[:8]


def _tok(spec):
    import json

    return Tokenizer.from_str(json.dumps(spec))


@pytest.fixture(scope="module")
def pruned(tiny_model):
    teacher_json = tokenizer_spec(tiny_model)
    plan = vocab.plan(teacher_json, CORPUS)
    student_json = vocab.rewrite_tokenizer_json(teacher_json, plan)
    return teacher_json, plan, student_json


def test_plan_keeps_specials_characters_and_corpus_tokens(pruned):
    teacher_json, plan, student_json = pruned
    old = teacher_json["model"]["vocab"]
    new = student_json["model"]["vocab"]
    assert plan.new_size < plan.old_size
    assert sorted(new.values()) == list(range(len(new)))  # dense ids
    for special in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"):
        assert special in new
    assert all(t in new for t in old if len(t) == 1 or (t.startswith("##") and len(t) == 3))
    corpus_tokens = {t for text in CORPUS for t in _tok(teacher_json).encode(text, add_special_tokens=False).tokens}
    assert corpus_tokens <= set(new)
    assert list(plan.keep_ids) == sorted(plan.keep_ids)


def test_vocab_size_budget_fills_with_low_ids(tiny_model):
    teacher_json = tokenizer_spec(tiny_model)
    small = vocab.plan(teacher_json, CORPUS)
    bigger = vocab.plan(teacher_json, CORPUS, size=small.new_size + 10)
    assert bigger.new_size == small.new_size + 10
    assert set(small.keep_ids) <= set(bigger.keep_ids)


def test_special_token_ids_are_remapped_everywhere(pruned):
    _, _, student_json = pruned
    new = student_json["model"]["vocab"]
    enc = _tok(student_json).encode("hello world")
    assert enc.ids[0] == new["[CLS]"] and enc.ids[-1] == new["[SEP]"]
    for added in student_json["added_tokens"]:
        assert new[added["content"]] == added["id"]
    tok = _tok(student_json)
    tok.enable_padding(length=12)
    assert tok.encode("hi").ids[-1] == new["[PAD]"]


def test_corpus_text_tokenises_to_the_same_pieces(pruned):
    teacher_json, _, student_json = pruned
    t, s = _tok(teacher_json), _tok(student_json)
    for text in CORPUS:
        assert t.encode(text).tokens == s.encode(text).tokens


def test_unseen_words_split_into_pieces_not_unk(pruned):
    teacher_json, _, student_json = pruned
    s = _tok(student_json)
    unseen = "weather"  # in the teacher vocabulary, not in CORPUS
    assert unseen in teacher_json["model"]["vocab"] and unseen not in student_json["model"]["vocab"]
    enc = s.encode(unseen, add_special_tokens=False)
    assert "[UNK]" not in enc.tokens and len(enc.tokens) > 1
    assert "".join(p.removeprefix("##") for p in enc.tokens) == unseen
    cov = vocab.coverage(teacher_json, student_json, ["weather", "the movie"])
    assert cov["unk_rate"] == 0.0 and 0 < cov["token_coverage"] < 1 and cov["same_tokens"] == 0.5


def test_embedding_rows_follow_the_tokenizer_and_outputs_match(pruned, tiny_model):
    teacher_json, plan, student_json = pruned
    teacher = load_hf_model(tiny_model, "sentence-embedding")
    student = load_hf_model(tiny_model, "sentence-embedding")
    vocab.shrink_word_embeddings(student, "bert", plan)
    assert student.config.vocab_size == plan.new_size
    t_rows = teacher.embeddings.word_embeddings.weight
    s_rows = student.embeddings.word_embeddings.weight
    old, new = teacher_json["model"]["vocab"], student_json["model"]["vocab"]
    for token, new_id in new.items():
        assert torch.equal(s_rows[new_id], t_rows[old[token]]), token
    # Same text through each model with its own tokenizer: identical embeddings.
    setup = Setup(task="sentence-embedding", family="bert", pooling="mean", max_length=32)
    t_ids = tokenize(_tok(teacher_json), CORPUS, 32)
    s_ids = tokenize(_tok(student_json), CORPUS, 32)
    assert t_ids != s_ids
    index = list(range(len(CORPUS)))
    with torch.no_grad():
        a = forward(teacher, setup, *collate(t_ids, index))["embedding"]
        b = forward(student, setup, *collate(s_ids, index))["embedding"]
    torch.testing.assert_close(a, b)


def test_non_wordpiece_tokenizer_is_refused(pruned):
    teacher_json, _, _ = pruned
    bad = dict(teacher_json, model={**teacher_json["model"], "type": "BPE"})
    with pytest.raises(ValueError, match="WordPiece"):
        vocab.plan(bad, CORPUS)
