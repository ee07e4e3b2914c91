"""The runtime wrapper under load and abuse: adversarial text, big batches, threads, 10,000 calls,
and typed errors for every bad call. Runs the bundle exactly as an app would (edgepack_runtime)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from edgepack.runtime import edgepack_runtime as rt

FORMATS = ("onnx", "tflite")
ADVERSARIAL = {
    "empty": "",
    "whitespace_only": " \t\n ",
    "ten_thousand_chars": ("the movie was really good " * 400)[:10_000],
    "ten_thousand_chars_no_spaces": "x" * 10_000,
    "emoji": "i love this phone 🙂👍🏽👨‍👩‍👧‍👦🇫🇷❤️",
    "right_to_left": "مرحبا بالعالم hello שלום עולם \u202eevil\u202c",
    "zero_width": "he\u200bllo wo\u200crld\u200d \ufeffthe\u2060 movie\u00ad",
    "homoglyphs": "аррlе раураl thе mоviе (Cyrillic а, р, е, о) Ηello Wοrld (Greek)",
    "control_chars": "a\x00b\x01c\x7f\x1b[31mred\x1b[0m",
    "combining_pileup": "e" + "\u0301" * 500,
}


@pytest.fixture(scope="module", params=FORMATS)
def embedder(request, tiny_bundle_ro):
    return rt.load_bundle(tiny_bundle_ro, format=request.param)


@pytest.fixture(scope="module", params=FORMATS)
def classifier(request, tiny_classifier_bundle_ro):
    return rt.load_bundle(tiny_classifier_bundle_ro, format=request.param)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ONNX dynamic int8 quantises activations with one range per tensor, i.e. per batch: a text's
# embedding moves by ~1e-4 with its batch neighbours. Batched vs alone is compared by cosine.
BATCH_COSINE = 0.9999


def assert_embeddings(e: np.ndarray, n: int, dim: int) -> None:
    assert e.shape == (n, dim) and e.dtype == np.float32
    assert np.isfinite(e).all()
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-4)  # normalised in-graph


@pytest.mark.parametrize("kind", sorted(ADVERSARIAL))
def test_embed_adversarial_text(embedder, kind):
    dim = embedder.manifest["output_dim"]
    text = ADVERSARIAL[kind]
    e = embedder.embed([text])
    assert_embeddings(e, 1, dim)
    # Same answer alone and inside a batch of other texts (padding and sorting must not leak).
    batch = embedder.embed(["hello world", text, "a great book to read today"])
    assert cosine(batch[1], e[0]) > BATCH_COSINE
    assert len(embedder.encode([text])[0]) <= embedder.max_length


@pytest.mark.parametrize("kind", sorted(ADVERSARIAL))
def test_classify_adversarial_text(classifier, kind):
    (r,) = classifier.classify([ADVERSARIAL[kind]])
    scores = np.array(list(r["scores"].values()))
    assert r["label"] in classifier.labels and np.isfinite(scores).all()
    assert abs(scores.sum() - 1.0) < 1e-5 and r["score"] == max(scores)


def test_batch_of_a_thousand(embedder):
    rng = np.random.default_rng(0)
    pool = list(ADVERSARIAL.values()) + ["the movie was really good", "hello world", "the train is fast"]
    texts = [pool[i] + " " + str(int(rng.integers(1000))) for i in rng.integers(len(pool), size=1000)]
    e = embedder.embed(texts)
    assert_embeddings(e, 1000, embedder.manifest["output_dim"])
    # Order is the caller's, not the internal length-sorted order.
    for i in (0, 137, 999):
        assert cosine(e[i], embedder.embed([texts[i]])[0]) > BATCH_COSINE


def test_empty_batch(embedder):
    assert embedder.embed([]).shape == (0, embedder.manifest["output_dim"])
    assert embedder.run_ids([]).shape == (0, embedder.manifest["output_dim"])


def test_threads_share_one_bundle(embedder):
    # 8 threads x 40 calls on one Bundle; before the fix, concurrent calls failed with
    # "RuntimeError: Already borrowed" from the shared Rust tokenizer.
    texts = [("word " * (i % 40)) + f"sentence {i}" for i in range(48)] + list(ADVERSARIAL.values())
    rng = np.random.default_rng(0)
    batches = [[texts[i] for i in rng.choice(len(texts), size=int(rng.integers(1, 12)), replace=False)] for _ in range(16)]
    reference = [embedder.embed(b) for b in batches]  # single-threaded answers, same batches
    errors, mismatches = [], []

    def work(seed):
        try:
            for k in range(40):
                j = (seed * 7 + k) % len(batches)
                if not np.array_equal(embedder.embed(batches[j]), reference[j]):
                    mismatches.append(seed)
        except Exception as exc:  # collected, asserted below
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and mismatches == []


def _rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


@pytest.mark.parametrize("fmt", FORMATS)
def test_memory_flat_over_ten_thousand_calls(tiny_bundle_ro, fmt):
    bundle = rt.load_bundle(tiny_bundle_ro, format=fmt)
    texts = ["the movie was really good", "🙂 مرحبا", "", "x" * 300]
    for i in range(500):  # warm up allocator pools and interpreter arenas
        bundle.embed([texts[i % 4]])
    start = _rss_bytes()
    for i in range(10_000):
        bundle.embed([texts[i % 4]])
    grown = _rss_bytes() - start
    # A leak of even 1 KiB per call would show as ~10 MB; allow allocator noise well below that.
    assert grown < 8 * 2**20, f"RSS grew {grown / 2**20:.1f} MiB over 10,000 calls"


# -- typed errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [None, 5, [None], [b"bytes"], ["ok", 3], "lone \ud800 surrogate", ["\udcff"]])
def test_bad_texts_raise_input_error(embedder, bad):
    with pytest.raises(rt.InputError):
        embedder.embed(bad)


@pytest.mark.parametrize("ids", [[[]], [[1] * 10_000], [[-1, 2]], [[10**9]]])
def test_bad_token_ids_raise_input_error(embedder, ids):
    # Before the fix these reached the interpreter: ValueError, ORT InvalidArgument, LiteRT RuntimeError.
    with pytest.raises(rt.InputError):
        embedder.run_ids(ids)


def test_wrong_task_call_is_typed(embedder, classifier):
    with pytest.raises(rt.InputError, match="use classify"):
        classifier.embed(["x"])
    with pytest.raises(rt.InputError, match="use embed"):
        embedder.classify(["x"])


def test_input_error_is_also_a_value_error():
    assert issubclass(rt.InputError, ValueError) and issubclass(rt.InputError, rt.RuntimeErrorBase)


def _edit_manifest(root, fn):
    path = root / rt.MANIFEST
    m = json.loads(path.read_text())
    fn(m)
    path.write_text(json.dumps(m))


def test_load_errors_are_typed(tiny_bundle, tmp_path):
    with pytest.raises(rt.BundleFormatError, match="not an edgepack bundle"):
        rt.load_bundle(tmp_path)
    with pytest.raises(rt.BundleFormatError, match="no fp16 artifact|no .* artifact"):
        rt.load_bundle(tiny_bundle, format="fp16")
    (tiny_bundle / "model.onnx").write_bytes(b"tampered")
    with pytest.raises(rt.BundleIntegrityError, match="sha256"):
        rt.load_bundle(tiny_bundle, format="onnx")


@pytest.mark.parametrize("edit, error", [
    (lambda m: m.update(files=[]), "files"),
    (lambda m: m.update(artifacts={"a": 1}), "artifacts"),
    (lambda m: m["files"].update({"model.onnx": "abc"}), "file entry"),
    (lambda m: m["tokenizer"].pop("max_length"), "max_length"),
    (lambda m: m.update(task=7), "task"),
], ids=["files_not_object", "artifacts_not_list", "file_entry_not_object", "tokenizer_no_max_length", "task_not_string"])
def test_malformed_manifest_is_a_format_error(tiny_bundle, edit, error):
    # Before the fix: AttributeError/KeyError/TypeError from deep inside loading.
    _edit_manifest(tiny_bundle, edit)
    with pytest.raises(rt.BundleFormatError, match=error):
        rt.load_bundle(tiny_bundle, format="onnx")


def test_artifact_missing_from_file_table_is_not_loaded_unverified(tiny_bundle):
    # Before the fix a model absent from the file table was loaded without any sha256 check.
    _edit_manifest(tiny_bundle, lambda m: m["files"].pop("model.onnx"))
    with pytest.raises(rt.BundleIntegrityError, match="not listed"):
        rt.load_bundle(tiny_bundle, format="onnx")


def test_unparseable_model_with_matching_hash_is_a_format_error(tiny_bundle):
    # Someone rewrote model.onnx and its hash: the parser's own exception becomes ours.
    (tiny_bundle / "model.onnx").write_bytes(b"not an onnx graph")
    _edit_manifest(tiny_bundle, lambda m: m["files"]["model.onnx"].update(sha256=rt.sha256_file(tiny_bundle / "model.onnx")))
    with pytest.raises(rt.BundleFormatError, match="cannot load the onnx model"):
        rt.load_bundle(tiny_bundle, format="onnx")
