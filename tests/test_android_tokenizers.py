"""The Android core's byte-level BPE and SentencePiece Unigram ports (issue #13) against Hugging Face ids.

Each port opens a real bundle (a tiny RoBERTa with a byte-level BPE, a tiny XLM-R with a Unigram tokenizer,
both trained in code on the built-in corpus) on the JVM and must give the Python runtime's ids for the
golden cases, the WordPiece port's tricky Unicode, fairseq special tokens typed in the text, and 1,000
seeded random strings (test_android_java.py's generator), token for token.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import pytest
from test_android_java import TRICKY, java_classes, random_texts, run_core, write_cases  # noqa: F401 (fixture)

import edgepack
from edgepack.testing import tiny_target_toml

# Where fairseq-style pipelines differ from BERT's: typed special tokens, spaces before and after them,
# runs of spaces (GPT-2's \s+(?!\S)), contractions, NFKC folding (fullwidth, ligatures, small forms that
# fold to "<s>"), U+2581 typed by the user.
SUBWORD_TRICKY = (
    "<s> hi </s><mask>x <pad> <unk><s></s>",
    "a<s>b  <mask>  c",
    "x <unk>  y\t<mask>\u3000<unk>\n<mask><mask>  <unk><unk> z",
    "it's don't we're I've I'm you'll he'd 'S 'LL '",
    "tabs\tand\nnewlines\r\n  and   runs    of spaces   ",
    "   leading and trailing   ",
    "ｆｕｌｌｗｉｄｔｈ ﬁ ﬂ ① ㎏ ﹤s﹥ ﹤mask﹥",
    "\u2581already\u2581meta \u2581\u2581 spaced",
    "numbers 1234567890 ١٢٣ ½ Ⅻ",
    "emoji 🙂👍🏽 👨\u200d👩\u200d👧 🇫🇷",
    "nbsp\u00a0here, narrow\u202fnbsp, ideographic\u3000space",
)

N_RANDOM = 1000


@pytest.fixture(scope="module")
def subword_bundles(tmp_path_factory, tiny_data):
    """Teacher bundles (TFLite, buckets 16 and 128) of a tiny RoBERTa (BPE), XLM-R (Unigram) and MPNet
    (WordPiece with fairseq's <s> </s> specials, as all-mpnet-base-v2's)."""
    from edgepack.testing import tiny_model

    root = tmp_path_factory.mktemp("subword")
    target = root / "tflite.toml"
    target.write_text(tiny_target_toml(formats=("tflite",), buckets=(16, 128)))
    out = {}
    for family, kind in (("roberta", "bpe"), ("xlm-roberta", "unigram"), ("mpnet", "wordpiece"), ("roberta", "bpe-strip")):
        model = tiny_model(root / f"m-{kind}", family, tokenizer=kind.split("-")[0], max_length=128)
        if kind == "bpe-strip":
            # As roberta-base's own tokenizer.json: "<mask>" takes the spaces before it (lstrip); here
            # "<unk>" also takes those after it (rstrip), so both paths of the port are exercised.
            spec = json.loads((model / "tokenizer.json").read_text(encoding="utf-8"))
            for tok in spec["added_tokens"]:
                tok["lstrip"] = tok["content"] == "<mask>"
                tok["rstrip"] = tok["content"] == "<unk>"
            (model / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
        out[kind] = root / f"bundle-{kind}"
        edgepack.build(target=str(target), model=str(model), data=(str(tiny_data),), out=out[kind], cache_dir=root / "cache")
    return out


@pytest.mark.parametrize("kind,model_type", [("bpe", "BPE"), ("unigram", "Unigram"), ("wordpiece", "WordPiece"), ("bpe-strip", "BPE")])
def test_java_port_matches_hugging_face_ids(kind, model_type, subword_bundles, java_classes, tmp_path):  # noqa: F811
    bundle = subword_bundles[kind]
    manifest = json.loads((bundle / "edgepack.json").read_text(encoding="utf-8"))
    assert manifest["tokenizer"]["type"] == model_type
    texts = list(TRICKY) + list(SUBWORD_TRICKY) + random_texts(N_RANDOM, seed=13)
    cases = write_cases(bundle, tmp_path / "cases.json", texts=texts, name=kind)
    rc, passed, failed, out = run_core(java_classes, tmp_path / "cases.json")
    assert (rc, failed) == (0, 0), out
    assert passed >= len(texts) + 4 + 2 * cases["expect"]["golden_count"]  # one check per text, plus the bundle's
    # The cases reach the interesting paths: unknown pieces (Unigram), typed specials, long truncated inputs.
    ids = [c["ids"] for c in cases["tokenizer_cases"]]
    max_length = cases["expect"]["max_length"]
    assert any(len(x) == max_length for x in ids) and sum(len(x) < max_length for x in ids) >= N_RANDOM * 0.9
    special = manifest["tokenizer"]["cls_id"]
    assert sum(x[1:-1].count(special) for x in ids) >= 3  # "<s>" typed in the text is the special id
    if kind == "unigram":
        assert sum(x.count(manifest["tokenizer"]["unk_id"]) for x in ids) > 50


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_changed_tokenizer_json_is_refused(kind, subword_bundles, java_classes, tmp_path):  # noqa: F811
    """BPE and Unigram read their merges and pieces from tokenizer.json: a changed byte there is refused."""
    bundle = tmp_path / kind
    shutil.copytree(subword_bundles[kind], bundle)
    write_cases(bundle, tmp_path / "cases.json")
    spec = bundle / "tokenizer.json"
    spec.write_text(spec.read_text(encoding="utf-8").replace('"<mask>"', '"<MASK>"', 1), encoding="utf-8")
    rc, _, failed, out = run_core(java_classes, tmp_path / "cases.json")
    assert rc == 1 and failed >= 1, out
    assert re.search(r"^FAIL .*: open bundle: .*Integrity: tokenizer.json: sha256 .* differs from the manifest", out, re.M), out


@pytest.mark.parametrize("kind,edit,message", [
    ("unigram", {"byte_fallback": True}, "tokenizer Unigram byte_fallback 'true' is not supported by the Java Unigram tokenizer"),
    ("unigram", {"normalizers": ["Precompiled"]}, "tokenizer normalizer 'Precompiled' is not supported by the Java Unigram tokenizer"),
    ("bpe", {"pre_tokenizers": [{"type": "Whitespace"}]}, "tokenizer pre_tokenizer 'Whitespace' is not supported by the Java BPE tokenizer"),
    ("bpe", {"dropout": 0.1}, "tokenizer BPE dropout '0.1' is not supported by the Java BPE tokenizer"),
])
def test_pipelines_the_ports_do_not_implement_are_refused(kind, edit, message, subword_bundles, java_classes, tmp_path):  # noqa: F811
    bundle = tmp_path / kind
    shutil.copytree(subword_bundles[kind], bundle)
    write_cases(bundle, tmp_path / "cases.json")
    path = bundle / "edgepack.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["tokenizer"].update(edit)
    path.write_text(json.dumps(manifest), encoding="utf-8")
    rc, _, _, out = run_core(java_classes, tmp_path / "cases.json")
    assert rc == 1
    assert message in out, out


def test_unigram_bundle_has_no_vocab_txt_and_the_manifest_says_so(subword_bundles):
    manifest = json.loads((subword_bundles["unigram"] / "edgepack.json").read_text(encoding="utf-8"))
    assert manifest["tokenizer"]["vocab"] is None and "vocab.txt" not in manifest["files"]
    bpe = json.loads((subword_bundles["bpe"] / "edgepack.json").read_text(encoding="utf-8"))
    assert bpe["tokenizer"]["vocab"] == "vocab.txt"
    assert bpe["files"]["tokenizer.json"]["sha256"] == hashlib.sha256((subword_bundles["bpe"] / "tokenizer.json").read_bytes()).hexdigest()


def test_real_xlmr_pipeline_is_refused_in_one_line(java_classes, tmp_path, tiny_data):  # noqa: F811
    """XLM-R's own tokenizer.json normalises with SentencePiece's Precompiled charsmap (grapheme-wise, as
    the Rust crate does), which the Java core does not implement: opening such a bundle names it."""
    pytest.importorskip("sentencepiece")
    from edgepack.testing import tiny_model

    model = tiny_model(tmp_path / "m", "xlm-roberta", tokenizer="sentencepiece")
    target = tmp_path / "tflite.toml"
    target.write_text(tiny_target_toml(formats=("tflite",), buckets=(16,)))
    out = tmp_path / "bundle"
    edgepack.build(target=str(target), model=str(model), data=(str(tiny_data),), out=out, cache_dir=tmp_path / "cache")
    write_cases(out, tmp_path / "cases.json")
    rc, _, failed, out_text = run_core(java_classes, tmp_path / "cases.json")
    assert rc == 1 and failed >= 1
    assert "open bundle: dev.edgepack.core.BundleException: tokenizer normalizer 'Precompiled' is not supported by the Java Unigram tokenizer" in out_text, out_text
