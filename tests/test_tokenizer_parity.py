"""Tokenizer parity: the runtime's tokenisation equals Hugging Face's fast tokenizer (transformers),
on text generated across Unicode categories, for the tiny test tokenizer and the built-in MiniLM one.

The runtime path is the one apps run: `edgepack_runtime.encode` on `tokenizer.json` (truncation at
the bundle's max_length, no padding). The reference is `AutoTokenizer.from_pretrained(dir)(text,
truncation=True, max_length=...)`. Hypothesis runs derandomised, so failures reproduce.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgepack.runtime import edgepack_runtime as rt

SETTINGS = settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))

# Unicode general categories, grouped as a reader would name them; surrogates (Cs) are not text.
CATEGORY_GROUPS = {
    "letters": ("Lu", "Ll", "Lt", "Lm", "Lo"),
    "marks": ("Mn", "Mc", "Me"),
    "numbers": ("Nd", "Nl", "No"),
    "punctuation": ("Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po"),
    "symbols": ("Sm", "Sc", "Sk", "So"),
    "separators": ("Zs", "Zl", "Zp"),
    "control_and_format": ("Cc", "Cf"),
    "private_and_unassigned": ("Co", "Cn"),
}
# Scripts and tricks that break naive tokenisers: RTL, CJK, emoji (with ZWJ and skin tones),
# combining accents, zero-width characters and Cyrillic/Greek homoglyphs of Latin letters.
SPECIAL_ALPHABETS = {
    "rtl": "مرحبا بالعالم שלום עולם ـ\u200f\u200e\u061c",
    "cjk": "中文字符日本語のテキスト한국어텍스트〇々〆",
    "emoji": "🙂👍🏽👨‍👩‍👧‍👦🇫🇷❤️✨🔥\u200d\ufe0f",
    "combining": "e\u0301a\u0308o\u0302n\u0303\u0327\u0338\u20dd",
    "zero_width": "ab\u200b\u200c\u200d\u2060\ufeff\u00ad ",
    "homoglyphs": "аеорсухАВЕКМНОРСТХ" + "οΑΒΕΖΗΙΚΜΝΟΡΤΥΧ" + "apple paypal",
}
ASCII_WORDS = st.sampled_from(["the", "movie", "was", "good", "Hello", "WORLD", "don't", "e-mail", "3.14", "naïve", "café"])


def mixed_text(alphabet_strategy) -> st.SearchStrategy[str]:
    """Runs of the chosen characters mixed with ordinary words and spaces."""
    piece = st.one_of(st.text(alphabet=alphabet_strategy, min_size=1, max_size=12), ASCII_WORDS)
    return st.lists(piece, max_size=12).flatmap(
        lambda parts: st.lists(st.sampled_from([" ", "", "  ", "\t", "\n"]), min_size=len(parts), max_size=len(parts)).map(
            lambda seps: "".join(p + s for p, s in zip(parts, seps))
        )
    )


def _pair(model_dir, max_length):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    runtime_tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    hf_tok = AutoTokenizer.from_pretrained(str(model_dir), use_fast=True, local_files_only=True, trust_remote_code=False)
    return runtime_tok, hf_tok, max_length


@pytest.fixture(scope="module")
def tiny_pair(tiny_model):
    return _pair(tiny_model, 16)  # short, so truncation is exercised too


@pytest.fixture(scope="module")
def minilm_pair():
    from edgepack.teacher import builtin_model_path

    path = builtin_model_path()
    if not (path / "tokenizer.json").is_file():
        pytest.skip("built-in MiniLM tokenizer.json not installed")
    return _pair(path, 128)


def assert_same(pair, texts):
    runtime_tok, hf_tok, max_length = pair
    ids, mask = rt.encode(runtime_tok, texts, max_length)
    got = [row[: int(m.sum())].tolist() for row, m in zip(ids, mask)]
    want = [hf_tok(t, truncation=True, max_length=max_length)["input_ids"] for t in texts]
    assert got == want, [(t, g, w) for t, g, w in zip(texts, got, want) if g != w][:3]


@pytest.mark.parametrize("which", ["tiny_pair", "minilm_pair"])
@pytest.mark.parametrize("group", sorted(CATEGORY_GROUPS))
def test_parity_across_unicode_categories(which, group, request):
    pair = request.getfixturevalue(which)
    alphabet = st.characters(categories=CATEGORY_GROUPS[group])

    @SETTINGS
    @given(st.lists(mixed_text(alphabet), min_size=1, max_size=4))
    def check(texts):
        assert_same(pair, texts)

    check()


@pytest.mark.parametrize("which", ["tiny_pair", "minilm_pair"])
@pytest.mark.parametrize("script", sorted(SPECIAL_ALPHABETS))
def test_parity_on_adversarial_scripts(which, script, request):
    pair = request.getfixturevalue(which)

    @SETTINGS
    @given(st.lists(mixed_text(st.sampled_from(SPECIAL_ALPHABETS[script])), min_size=1, max_size=4))
    def check(texts):
        assert_same(pair, texts)

    check()


@pytest.mark.parametrize("which", ["tiny_pair", "minilm_pair"])
def test_parity_on_fixed_edge_cases(which, request):
    texts = ["", " ", "\u200b", "a" * 10_000, "word " * 3000, "🙂" * 500, "\x00\x01\x7f", "ﬁ ﬂ Ⅻ ㎏ ℌ",
             "İstanbul ǅ ß ẞ", "ＦＵＬＬＷＩＤＴＨ", "\u202eevil\u202c", "x" * 101, "ab" * 60 + " end"]
    assert_same(request.getfixturevalue(which), texts)


def test_bundle_encode_matches_hf_and_goldens(tiny_bundle_ro, tiny_model):
    """The loaded bundle (what apps call) tokenises like HF, and the golden ids in its manifest agree."""
    from transformers import AutoTokenizer

    bundle = rt.load_bundle(tiny_bundle_ro, format="onnx")
    hf_tok = AutoTokenizer.from_pretrained(str(tiny_model), use_fast=True, local_files_only=True)
    golden = bundle.manifest["golden"]
    texts = [c["text"] for c in golden]
    assert bundle.encode(texts) == [c["ids"] for c in golden]
    assert bundle.encode(texts) == [hf_tok(t, truncation=True, max_length=bundle.max_length)["input_ids"] for t in texts]
