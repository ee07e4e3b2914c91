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


# -- tokenisation against the teacher: the report's figure and the max_retokenized_words gate (issue #11) --

def test_retokenized_share_is_zero_for_the_teachers_tokenizer_and_counts_changed_words(pruned):
    from edgepack.measure.tokenization import coverage

    teacher_json, _, student_json = pruned
    texts = ["weather today", "the movie", "the weather is good"]
    same = coverage(teacher_json, teacher_json, texts)
    assert same["retokenized_words"] == same["retokenized_texts"] == 0.0 and same["words"] == 8
    cov = coverage(teacher_json, student_json, texts)
    # "weather" (2 of 8 words) is in the teacher's vocabulary, not in CORPUS: it splits into pieces
    assert cov["retokenized_word_count"] == 2 and cov["retokenized_words"] == 0.25
    assert cov["retokenized_text_count"] == 2 and cov["retokenized_texts"] == round(2 / 3, 4)
    assert vocab.coverage is coverage  # one implementation, torch-free, in the measuring package


def test_tokenization_gate_is_typed_and_off_at_zero():
    from edgepack.measure.gates import gate_failures
    from edgepack.targets import BudgetSpec

    metrics = {"formats": {}, "tokenization": {"retokenized_words": 0.2}}
    assert gate_failures("sentence-embedding", BudgetSpec(), metrics) == []
    assert gate_failures("sentence-embedding", BudgetSpec(max_retokenized_words=0.25), metrics) == []
    (fail,) = gate_failures("sentence-embedding", BudgetSpec(max_retokenized_words=0.1), metrics)
    assert (fail.kind, fail.metric, fail.value, fail.floor) == ("tokenization", "max_retokenized_words", 0.2, 0.1)
    assert "20.0% of validation words tokenise differently" in str(fail) and "max_retokenized_words 0.1" in str(fail)


def test_retokenized_share_must_be_a_share():
    from edgepack.errors import TargetError
    from edgepack.targets import parse_target

    with pytest.raises(TargetError, match="max_retokenized_words"):
        parse_target('name = "x"\nformats = ["onnx"]\n[budget]\nmax_retokenized_words = 5\n', "bad.toml")


def test_unpruned_bundle_reports_no_retokenized_words(tiny_bundle_ro):
    import json

    tk = json.loads((tiny_bundle_ro / "report.json").read_text())["metrics"]["tokenization"]
    assert tk["vocab_pruned"] is False and tk["words"] > 0
    assert tk["retokenized_words"] == tk["retokenized_texts"] == 0.0
    assert "teacher's tokenizer" in (tiny_bundle_ro / "report.md").read_text()


PRUNED_STUDENT = """
[student]
strategy = "distil"
layers = 1
vocab_prune = true
epochs = 1
batch_size = 16
"""


@pytest.fixture(scope="module")
def pruned_build(session_dir, tiny_model):
    """A vocabulary-pruned student whose validation texts hold words its training text never used
    (each teacher word that TINY_SENTENCES do not use appears in one line only)."""
    from edgepack.testing import tiny_target_toml

    root = session_dir / "vocab-gate"
    root.mkdir(exist_ok=True)
    used = {w for s in TINY_SENTENCES for w in s.split()}
    teacher_words = [w for w in tokenizer_spec(tiny_model)["model"]["vocab"] if w.isalpha() and len(w) > 2 and w not in used]
    lines = list(TINY_SENTENCES) + [f"{TINY_SENTENCES[i % len(TINY_SENTENCES)]} {w}" for i, w in enumerate(teacher_words)]
    data = root / "data.txt"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def build(name, **budget):
        target = root / f"{name}.toml"
        target.write_text(tiny_target_toml(formats=("onnx",), buckets=(16,), **budget) + PRUNED_STUDENT, encoding="utf-8")
        return target

    return root, data, build


def test_pruned_bundle_reports_retokenized_words(pruned_build, tiny_model):
    import json

    import edgepack

    root, data, target = pruned_build
    out = root / "out"
    edgepack.build(target=str(target("open")), model=str(tiny_model), data=(str(data),), out=out, cache_dir=root / "cache")
    tk = json.loads((out / "report.json").read_text())["metrics"]["tokenization"]
    assert tk["vocab_pruned"] is True
    assert 0 < tk["retokenized_words"] < 1 and 0 < tk["retokenized_texts"] <= 1
    assert "validation words tokenised differently from the teacher" in (out / "report.md").read_text()
    assert json.loads((out / "edgepack.json").read_text())["budget"]["max_retokenized_words"] == 0


def test_retokenized_words_over_budget_fail_the_build(pruned_build, tiny_model, tmp_path):
    from click.testing import CliRunner

    from edgepack.cli import main

    root, data, target = pruned_build
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", "--target", str(target("strict", max_retokenized_words=0.001)), "--model",
                                       str(tiny_model), "--data", str(data), "--out", str(out), "--cache-dir", str(root / "cache")])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "of validation words tokenise differently from the teacher" in errors[0]
    assert "max_retokenized_words 0.001" in errors[0] and "Traceback" not in result.output
    assert not out.exists()
