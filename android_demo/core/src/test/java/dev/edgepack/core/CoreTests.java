package dev.edgepack.core;

import java.io.File;
import java.io.FileInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * The core module's JVM tests: a tiny runner (no JUnit, so nothing needs installing) that prints one line
 * per failure and ends with "N passed, N failed"; exit status 1 when anything failed.
 *
 * <pre>java -cp build dev.edgepack.core.CoreTests [cases.json]</pre>
 *
 * Without arguments only the self-contained checks run (known vectors, JSON, buckets, path confinement).
 * cases.json (written by tests/test_android_java.py) names a bundle and carries what Python computed for
 * it: Hugging Face token ids for tricky texts, expected softmax/ranking, bucket choices, manifest facts.
 */
public final class CoreTests {
    private int passed;
    private int failed;

    interface Check {
        void run() throws Exception;
    }

    private void check(String name, Check body) {
        try {
            body.run();
            passed++;
        } catch (Throwable t) {
            failed++;
            System.out.println("FAIL " + name + ": " + t);
        }
    }

    static void assertTrue(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    static void assertEq(Object expected, Object got, String what) {
        if (expected == null ? got != null : !expected.equals(got)) {
            throw new AssertionError(what + ": expected " + expected + ", got " + got);
        }
    }

    static void assertClose(double expected, double got, double tol, String what) {
        if (!(Math.abs(expected - got) <= tol)) throw new AssertionError(what + ": expected " + expected + ", got " + got);
    }

    static void assertThrows(Class<? extends Throwable> type, Check body, String what) {
        try {
            body.run();
        } catch (Throwable t) {
            if (type.isInstance(t)) return;
            throw new AssertionError(what + ": threw " + t + ", expected " + type.getSimpleName());
        }
        throw new AssertionError(what + ": did not throw " + type.getSimpleName());
    }

    /** Java-escaped text, so a failing tricky case shows its invisible characters. */
    static String show(String s) {
        StringBuilder sb = new StringBuilder("\"");
        int limit = Math.min(s.length(), 80);
        for (int i = 0; i < limit; i++) {
            char c = s.charAt(i);
            if (c >= 0x20 && c < 0x7F) sb.append(c);
            else sb.append(String.format("\\u%04x", (int) c));
        }
        return sb.append(s.length() > limit ? "…\"" : "\"").toString();
    }

    public static void main(String[] args) throws Exception {
        CoreTests t = new CoreTests();
        t.selfContained();
        for (String path : args) t.bundleCases(path);
        System.out.println(t.passed + " passed, " + t.failed + " failed");
        System.exit(t.failed == 0 && t.passed > 0 ? 0 : 1);
    }

    // -- checks that need no bundle ---------------------------------------------------------------

    void selfContained() {
        check("softmax known values", () -> {
            float[] p = PostProcess.softmax(new float[] {1f, 2f, 3f});
            assertClose(0.09003057, p[0], 1e-6, "p0");
            assertClose(0.24472847, p[1], 1e-6, "p1");
            assertClose(0.66524096, p[2], 1e-6, "p2");
        });
        check("softmax does not overflow", () -> {
            float[] p = PostProcess.softmax(new float[] {1000f, 1001f});
            assertClose(0.26894142, p[0], 1e-6, "p0");
            assertClose(0.73105858, p[1], 1e-6, "p1");
        });
        check("l2 normalise known vector", () -> {
            float[] v = PostProcess.l2Normalize(new float[] {3f, 4f});
            assertClose(0.6, v[0], 1e-7, "x");
            assertClose(0.8, v[1], 1e-7, "y");
        });
        check("l2 normalise zero vector stays zero", () -> {
            float[] v = PostProcess.l2Normalize(new float[] {0f, 0f});
            assertTrue(v[0] == 0f && v[1] == 0f, "zero vector became " + Arrays.toString(v));
        });
        check("cosine known values", () -> {
            assertClose(1.0, PostProcess.cosine(new float[] {1, 2}, new float[] {2, 4}), 1e-9, "parallel");
            assertClose(-1.0, PostProcess.cosine(new float[] {1, 0}, new float[] {-3, 0}), 1e-9, "opposite");
            assertClose(0.0, PostProcess.cosine(new float[] {1, 0}, new float[] {0, 5}), 1e-9, "orthogonal");
            assertClose(0.0, PostProcess.cosine(new float[] {0, 0}, new float[] {1, 1}), 1e-9, "zero");
        });
        check("top-k order and ties", () -> {
            List<PostProcess.Scored> top = PostProcess.topK(new float[] {0.1f, 0.7f, 0.7f, 0.05f, 0.9f}, 3);
            assertEq("[4, 1, 2]", indices(top).toString(), "top-3");
            assertEq(0, PostProcess.topK(new float[] {1f}, 0).size(), "k=0");
            assertEq(2, PostProcess.topK(new float[] {1f, 2f}, 10).size(), "k > n");
        });
        check("cosine ranking of known notes", () -> {
            List<float[]> notes = Arrays.asList(new float[] {0, 1}, new float[] {1, 0}, new float[] {1, 1});
            assertEq("[1, 2, 0]", indices(PostProcess.rankByCosine(new float[] {1, 0.1f}, notes)).toString(), "ranking");
        });
        check("bucket choice", () -> {
            int[] b = {32, 64, 128};
            assertEq(0, Buckets.choose(b, 1), "1");
            assertEq(0, Buckets.choose(b, 32), "32");
            assertEq(1, Buckets.choose(b, 33), "33");
            assertEq(2, Buckets.choose(b, 128), "128");
            assertEq(2, Buckets.choose(b, 500), "over the largest");
            assertThrows(IllegalArgumentException.class, () -> Buckets.choose(new int[0], 3), "no buckets");
        });
        check("padding and mask", () -> {
            assertEq("[2, 7, 3, 0, 0]", Arrays.toString(Buckets.padIds(new int[] {2, 7, 3}, 5, 0)), "ids");
            assertEq("[1, 1, 1, 0, 0]", Arrays.toString(Buckets.mask(3, 5)), "mask");
        });
        check("json values and escapes", () -> {
            Map<String, Object> o = Json.obj(Json.parse(
                    "{\"a\": [1, -2.5e1, true, null, \"x\\u00e9\\ud83d\\ude42\\n\"], \"b\": {\"c\": 0}}"), "root");
            List<Object> a = Json.arr(o.get("a"), "a");
            assertEq(1L, a.get(0), "int");
            assertEq(-25.0, a.get(1), "exp");
            assertEq(Boolean.TRUE, a.get(2), "bool");
            assertEq(null, a.get(3), "null");
            assertEq("xé🙂\n", a.get(4), "string with surrogate pair");
            assertEq(0L, Json.obj(o.get("b"), "b").get("c"), "nested");
        });
        check("json rejects malformed input", () -> {
            for (String bad : new String[] {"{", "[1,]", "{\"a\" 1}", "\"\\x\"", "01x", "[1] 2", "\"raw\u0001\""}) {
                assertThrows(IllegalArgumentException.class, () -> Json.parse(bad), "parse " + bad);
            }
            StringBuilder deep = new StringBuilder();
            for (int i = 0; i < 10000; i++) deep.append('[');
            assertThrows(IllegalArgumentException.class, () -> Json.parse(deep.toString()), "deep nesting");
        });
        check("manifest paths stay inside the bundle", () -> {
            for (String bad : new String[] {"../x", "/etc/passwd", "a/../../b", "a\\b", "", "C:x", "a//b"}) {
                assertThrows(IllegalArgumentException.class, () -> Manifest.checkPath(bad), "path " + bad);
            }
            assertEq("sub/model.tflite", Manifest.checkPath("sub/model.tflite"), "plain path");
        });
        check("newer manifest format refused", () -> assertThrows(BundleException.class,
                () -> Manifest.parse("{\"format_version\": 99, \"task\": \"x\"}"), "format 99"));
        check("format 1 (one .tflite per bucket) refused in one line", () -> {
            try {
                Manifest.parse("{\"format_version\": 1, \"task\": \"x\"}");
                throw new AssertionError("format 1 was read");
            } catch (BundleException e) {
                assertTrue(e.getMessage().contains("bundle format 1") && e.getMessage().contains("rebuild")
                        && !e.getMessage().contains("\n"), "message: " + e.getMessage());
            }
        });
        check("sha256 known value and mismatch", () -> {
            byte[] abc = "abc".getBytes(StandardCharsets.UTF_8);
            assertEq("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", Sha256.hex(abc), "sha256(abc)");
            Sha256.verify("abc", abc, "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD");
            assertThrows(BundleException.Integrity.class, () -> Sha256.verify("abd", "abd".getBytes(StandardCharsets.UTF_8),
                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "changed bytes");
        });
    }

    static List<Integer> indices(List<PostProcess.Scored> scored) {
        List<Integer> out = new ArrayList<>();
        for (PostProcess.Scored s : scored) out.add(s.index);
        return out;
    }

    // -- checks against a bundle built by the Python side -----------------------------------------

    void bundleCases(String casesPath) throws Exception {
        Map<String, Object> cases;
        try (InputStream in = new FileInputStream(casesPath)) {
            cases = Json.obj(Json.parse(new String(WordPieceTokenizer.readAll(in), StandardCharsets.UTF_8)), casesPath);
        }
        String name = cases.get("name") instanceof String ? (String) cases.get("name") : casesPath;
        File root = new File(Json.str(cases.get("bundle"), "bundle"));
        String format = Json.str(cases.get("format"), "format");
        final EdgepackBundle[] opened = new EdgepackBundle[1];
        check(name + ": open bundle", () -> opened[0] = EdgepackBundle.open(EdgepackBundle.directory(root), format));
        EdgepackBundle bundle = opened[0];
        if (bundle == null) {
            failed++;  // nothing below can run; count it so a broken bundle can never pass
            return;
        }
        Manifest m = bundle.manifest;
        Map<String, Object> expect = Json.obj(cases.get("expect"), "expect");

        check(name + ": manifest facts", () -> {
            assertEq(expect.get("task"), m.task, "task");
            assertEq(expect.get("output"), m.output, "output");
            assertEq(String.valueOf(expect.get("labels")), m.labels.toString(), "labels");
            assertEq(Json.integer(expect.get("max_length"), "max_length"), (long) bundle.tokenizer.maxLength(), "max_length");
            assertEq(Arrays.toString(Json.ints(expect.get("buckets"), "buckets")), Arrays.toString(bundle.buckets), "buckets");
            assertEq(Json.integer(expect.get("cls_id"), "cls"), (long) m.tokenizer.clsId, "cls_id");
            assertEq(Json.integer(expect.get("sep_id"), "sep"), (long) m.tokenizer.sepId, "sep_id");
            // A byte-level BPE has no unknown token: null in the manifest, -1 in Java.
            assertEq(expect.get("unk_id") == null ? -1L : Json.integer(expect.get("unk_id"), "unk"), (long) m.tokenizer.unkId, "unk_id");
            assertEq(Json.integer(expect.get("golden_count"), "golden_count"), (long) m.golden.size(), "golden cases");
            assertEq(Json.bool(expect.get("normalized_in_graph"), false), m.normalizedInGraph, "normalised in graph");
        });

        check(name + ": every file matches its sha256", () -> {
            String problem = bundle.verifyAll();
            assertTrue(problem == null, String.valueOf(problem));
        });
        check(name + ": a changed model byte is refused", () -> {
            Manifest.Artifact a = bundle.model;
            byte[] data = bundle.readVerified(a.path);
            data[data.length / 2] ^= 1;
            assertThrows(BundleException.Integrity.class, () -> Sha256.verify(a.path, data, a.sha256), "flipped bit");
            assertThrows(BundleException.Integrity.class, () -> bundle.readVerified("not-in-the-manifest.bin"), "unlisted file");
        });

        for (Manifest.GoldenCase g : m.golden) {
            check(name + ": golden ids " + show(g.text), () -> {
                int[] got = bundle.tokenizer.encode(g.text);
                assertTrue(Arrays.equals(g.ids, got), "expected " + Arrays.toString(g.ids) + "\n     got      " + Arrays.toString(got));
            });
            check(name + ": golden bucket " + show(g.text), () -> {
                EdgepackBundle.Input in = bundle.prepareIds(g.ids);
                int bucket = bundle.buckets[in.bucket];
                assertTrue(bucket >= g.ids.length || in.bucket == bundle.buckets.length - 1, "bucket " + bucket + " too small");
                assertTrue(in.bucket == 0 || bundle.buckets[in.bucket - 1] < g.ids.length, "a smaller bucket fits");
                assertEq(bucket, in.paddedIds.length, "padded length");
                assertEq(bundle.signatures[in.bucket], in.signature, "signature");
                int ones = 0;
                for (int x : in.attentionMask) ones += x;
                assertEq(g.ids.length, ones, "mask ones");
            });
        }

        // Every golden case through every signature it fits in: the build recorded one output per
        // signature; the core must list the same signatures, prepare exactly the input LiteRT was fed for
        // each, and its golden rule must accept what LiteRT returned for that input (tests/test_android_java.py
        // runs the signatures with ai-edge-litert: no LiteRT for a plain JVM).
        for (Manifest.GoldenCase g : m.golden) {
            check(name + ": golden signatures " + show(g.text), () -> {
                List<String> fits = new ArrayList<>();
                for (int i = 0; i < bundle.buckets.length; i++) {
                    if (bundle.buckets[i] >= g.ids.length) fits.add(bundle.signatures[i] == null ? "" : bundle.signatures[i]);
                }
                Map<String, float[]> recorded = g.expected.get(format);
                assertTrue(recorded != null, "no " + format + " golden output");
                assertEq(fits.toString(), new ArrayList<>(recorded.keySet()).toString(), "signatures with a golden output");
            });
        }
        int runs = 0;
        if (cases.get("signature_runs") != null) {
            for (Object o : Json.arr(cases.get("signature_runs"), "signature_runs")) {
                Map<String, Object> r = Json.obj(o, "signature_runs[]");
                Manifest.GoldenCase g = m.golden.get((int) Json.integer(r.get("case"), "case"));
                String signature = Json.str(r.get("signature"), "signature");
                int[] padded = Json.ints(r.get("input_ids"), "input_ids");
                int[] mask = Json.ints(r.get("attention_mask"), "attention_mask");
                float[] output = Json.floats(r.get("output"), "output");
                runs++;
                check(name + ": golden through " + signature + " " + show(g.text), () -> {
                    EdgepackBundle.Input in = bundle.prepareIds(g.ids, signature);
                    assertEq(signature, in.signature, "signature");
                    assertEq(Arrays.toString(padded), Arrays.toString(in.paddedIds), "input_ids fed to " + signature);
                    assertEq(Arrays.toString(mask), Arrays.toString(in.attentionMask), "attention_mask fed to " + signature);
                    float[] expected = g.expected(format, signature);
                    assertTrue(expected != null, "no golden output for " + signature);
                    String why = GoldenCheck.mismatch(expected, output, m.goldenTolerance);
                    assertTrue(why == null, "LiteRT's output through " + signature + ": " + why);
                });
            }
            int listed = 0;
            for (Manifest.GoldenCase g : m.golden) listed += g.expected.get(format) == null ? 0 : g.expected.get(format).size();
            final int ran = runs;
            final int all = listed;
            check(name + ": every golden (case, signature) ran", () -> assertEq(all, ran, "runs"));
        }

        List<Object> tricky = cases.get("tokenizer_cases") == null ? new ArrayList<Object>() : Json.arr(cases.get("tokenizer_cases"), "tokenizer_cases");
        for (Object o : tricky) {
            Map<String, Object> c = Json.obj(o, "tokenizer_cases[]");
            String text = Json.str(c.get("text"), "text");
            int[] ids = Json.ints(c.get("ids"), "ids");
            check(name + ": hf ids " + show(text), () -> {
                int[] got = bundle.tokenizer.encode(text);
                assertTrue(Arrays.equals(ids, got), "expected " + Arrays.toString(ids) + "\n     got      " + Arrays.toString(got));
            });
        }

        if (cases.get("bucket_choices") != null) {
            for (Object o : Json.arr(cases.get("bucket_choices"), "bucket_choices")) {
                int[] pair = Json.ints(o, "bucket_choices[]");
                check(name + ": bucket for length " + pair[0], () ->
                        assertEq(pair[1], bundle.buckets[Buckets.choose(bundle.buckets, pair[0])], "bucket"));
            }
        }

        // Post-processing on the golden outputs, against what numpy computed from the same numbers.
        if (cases.get("softmax") != null) {
            for (Object o : Json.arr(cases.get("softmax"), "softmax")) {
                Map<String, Object> c = Json.obj(o, "softmax[]");
                float[] logits = Json.floats(c.get("logits"), "logits");
                float[] probs = Json.floats(c.get("probs"), "probs");
                String label = Json.str(c.get("label"), "label");
                check(name + ": softmax/top-1 of golden logits " + Arrays.toString(logits), () -> {
                    float[] got = PostProcess.softmax(logits);
                    for (int i = 0; i < probs.length; i++) assertClose(probs[i], got[i], 1e-6, "p" + i);
                    List<PostProcess.Scored> top = PostProcess.topK(got, 1);
                    assertEq(label, m.labels.get(top.get(0).index), "label");
                });
            }
        }
        if (cases.get("ranking") != null) {
            Map<String, Object> r = Json.obj(cases.get("ranking"), "ranking");
            float[] query = Json.floats(r.get("query"), "query");
            List<float[]> docs = new ArrayList<>();
            for (Object d : Json.arr(r.get("documents"), "documents")) docs.add(Json.floats(d, "documents[]"));
            int[] order = Json.ints(r.get("order"), "order");
            float[] scores = Json.floats(r.get("scores"), "scores");
            check(name + ": cosine ranking of golden embeddings", () -> {
                List<PostProcess.Scored> got = PostProcess.rankByCosine(query, docs);
                assertEq(Arrays.toString(order), indices(got).toString(), "order");
                for (int i = 0; i < order.length; i++) assertClose(scores[i], got.get(i).score, 1e-5, "score " + i);
            });
        }
        for (Manifest.GoldenCase g : m.golden) {
            check(name + ": golden check accepts the recorded output " + show(g.text), () -> {
                // the output of the signature the app picks for these ids
                float[] ref = g.expected(format, bundle.prepareIds(g.ids).signature);
                assertTrue(ref != null, "no " + format + " golden output");
                if (m.normalizedInGraph) {
                    float[] n = PostProcess.l2Normalize(ref);
                    for (int i = 0; i < ref.length; i++) assertClose(ref[i], n[i], 1e-5, "already unit length [" + i + "]");
                }
                // The tolerance is for re-running the same format on another CPU, not for comparing formats
                // (int8 ONNX and int8 TFLite are quantised differently), so only the app's format is used.
                assertTrue(GoldenCheck.mismatch(ref, ref, m.goldenTolerance) == null, "identical output rejected");
                float[] jitter = ref.clone();
                for (int i = 0; i < jitter.length; i++) jitter[i] += (i % 2 == 0 ? 1e-4f : -1e-4f);
                String why = GoldenCheck.mismatch(ref, jitter, m.goldenTolerance);
                assertTrue(why == null, "1e-4 jitter rejected: " + why);
                // A different output must be caught: negate it (embeddings) or swap the top two logits.
                float[] wrong = ref.clone();
                if (m.isClassifier() && wrong.length > 1) {
                    int best = PostProcess.argmax(wrong);
                    int other = best == 0 ? 1 : 0;
                    float tmp = wrong[best]; wrong[best] = wrong[other]; wrong[other] = tmp;
                    if (wrong[best] == wrong[other]) wrong[other] += 1f;
                } else {
                    for (int i = 0; i < wrong.length; i++) wrong[i] = -wrong[i];
                }
                assertTrue(GoldenCheck.mismatch(ref, wrong, m.goldenTolerance) != null, "a wrong output passed the golden check");
            });
        }
    }
}
