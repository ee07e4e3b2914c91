package dev.edgepack.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The parts of {@code edgepack.json} an app needs, read once and checked: tokenizer facts, one model
 * artifact per format (a .tflite holds one signature per sequence bucket), the sha256 of every file, and
 * the golden cases. Field names follow edgepack/manifest.py and edgepack/golden.py, the Python side that
 * writes them.
 */
public final class Manifest {
    /** The newest manifest format this reader understands (edgepack_runtime.FORMAT_VERSION). */
    public static final int FORMAT_VERSION = 2;
    /**
     * The oldest it reads. Format 1 shipped one .tflite per bucket; format 2 (issue #12) ships one file
     * with a signature per bucket. Older bundles are refused in one line: rebuilding is one command, and
     * an app ships the bundle and this core together.
     */
    public static final int OLDEST_FORMAT_VERSION = 2;
    public static final String FILE = "edgepack.json";

    public final int formatVersion;
    public final String target;
    public final String task;
    /** "embedding" or "logits". */
    public final String output;
    public final int outputDim;
    public final List<String> labels;
    public final boolean normalizedInGraph;
    public final TokenizerSpec tokenizer;
    public final List<Artifact> artifacts;
    /** relative path -> sha256 (hex) of every file in the bundle except the manifest. */
    public final Map<String, String> fileSha256;
    public final List<GoldenCase> golden;
    public final GoldenCheck.Tolerance goldenTolerance;

    /** One static-shape entry point of a .tflite: Interpreter.runSignature(inputs, outputs, name). */
    public static final class Signature {
        public final String name;
        public final int sequenceLength;

        Signature(String name, int sequenceLength) {
            this.name = name;
            this.sequenceLength = sequenceLength;
        }
    }

    public static final class Artifact {
        public final String path;
        public final String format;
        public final String precision;
        /** One per sequence bucket, shortest first; empty when the artifact takes any length (ONNX). */
        public final List<Signature> signatures;
        public final String sha256;
        public final long bytes;
        /** logical input name ("input_ids", "attention_mask") -> the signature's input name. */
        public final Map<String, String> inputTensors;
        /** The signature's output key ("output_0"). */
        public final String signatureOutput;

        Artifact(String path, String format, String precision, List<Signature> signatures, String sha256, long bytes,
                 Map<String, String> inputTensors, String signatureOutput) {
            this.path = path;
            this.format = format;
            this.precision = precision;
            this.signatures = signatures;
            this.sha256 = sha256;
            this.bytes = bytes;
            this.inputTensors = inputTensors;
            this.signatureOutput = signatureOutput;
        }
    }

    public static final class GoldenCase {
        public final String text;
        public final int[] ids;
        /**
         * format ("tflite", "onnx") -> signature ("seq32"; "" for a format without signatures) -> the
         * output the build recorded for {@link #ids} through it. Every signature the ids fit in is listed.
         */
        public final Map<String, Map<String, float[]>> expected;

        GoldenCase(String text, int[] ids, Map<String, Map<String, float[]>> expected) {
            this.text = text;
            this.ids = ids;
            this.expected = expected;
        }

        /** The recorded output of one format through one signature ("" for none), or null. */
        public float[] expected(String format, String signature) {
            Map<String, float[]> bySignature = expected.get(format);
            return bySignature == null ? null : bySignature.get(signature == null ? "" : signature);
        }
    }

    private Manifest(Map<String, Object> m) throws BundleException {
        try {
            formatVersion = (int) Json.integer(m.get("format_version"), "format_version");
            if (formatVersion > FORMAT_VERSION) {
                throw new BundleException("bundle format " + formatVersion + " is newer than this app reads ("
                        + FORMAT_VERSION + "); update the app's edgepack core");
            }
            if (formatVersion < OLDEST_FORMAT_VERSION) {
                throw new BundleException("bundle format " + formatVersion + " (one .tflite per sequence bucket) is older than"
                        + " this app reads (" + OLDEST_FORMAT_VERSION + ".." + FORMAT_VERSION + "); rebuild it with `edgepack build`");
            }
            target = m.get("target") instanceof String ? (String) m.get("target") : "";
            task = Json.str(m.get("task"), "task");
            output = m.get("output") instanceof String ? (String) m.get("output")
                    : ("text-classification".equals(task) ? "logits" : "embedding");
            outputDim = m.get("output_dim") == null ? 0 : (int) Json.integer(m.get("output_dim"), "output_dim");
            List<String> labelList = new ArrayList<>();
            if (m.get("labels") != null) {
                for (Object o : Json.arr(m.get("labels"), "labels")) labelList.add(Json.str(o, "labels[]"));
            }
            labels = Collections.unmodifiableList(labelList);
            Object pooling = m.get("pooling");
            normalizedInGraph = pooling instanceof Map
                    && Json.bool(Json.obj(pooling, "pooling").get("normalize"), false)
                    && Json.bool(Json.obj(pooling, "pooling").get("in_graph"), false);
            tokenizer = new TokenizerSpec(Json.obj(m.get("tokenizer"), "tokenizer"));
            artifacts = Collections.unmodifiableList(readArtifacts(Json.arr(m.get("artifacts"), "artifacts")));
            Map<String, String> files = new LinkedHashMap<>();
            for (Map.Entry<String, Object> e : Json.obj(m.get("files"), "files").entrySet()) {
                files.put(checkPath(e.getKey()), Json.str(Json.obj(e.getValue(), "files").get("sha256"), "files.sha256"));
            }
            fileSha256 = Collections.unmodifiableMap(files);
            golden = Collections.unmodifiableList(readGolden(m.get("golden")));
            goldenTolerance = GoldenCheck.Tolerance.from(m.get("golden_tolerance"), task);
        } catch (IllegalArgumentException e) {
            throw new BundleException(FILE + ": " + e.getMessage(), e);
        }
    }

    public static Manifest parse(String json) throws BundleException {
        Object root;
        try {
            root = Json.parse(json);
        } catch (IllegalArgumentException e) {
            throw new BundleException(FILE + " is not valid JSON (" + e.getMessage() + ")", e);
        }
        if (!(root instanceof Map)) throw new BundleException(FILE + " must be a JSON object");
        return new Manifest(Json.obj(root, FILE));
    }

    public boolean isClassifier() {
        return "text-classification".equals(task);
    }

    /** The one artifact of a format, or null when the bundle has none. */
    public Artifact artifact(String format) {
        for (Artifact a : artifacts) if (a.format.equals(format)) return a;
        return null;
    }

    /** Sequence buckets of a format's signatures, ascending; empty for a dynamic-shape format. */
    public int[] buckets(String format) {
        Artifact a = artifact(format);
        int[] out = new int[a == null ? 0 : a.signatures.size()];
        for (int i = 0; i < out.length; i++) out[i] = a.signatures.get(i).sequenceLength;
        return out;
    }

    /**
     * Refuse paths that could leave the bundle: the manifest is data, and a crafted one must not make the
     * app read another asset or file (the Python runtime's confined() does the same).
     */
    static String checkPath(String rel) {
        if (rel.isEmpty() || rel.startsWith("/") || rel.contains("\\") || rel.indexOf(':') >= 0) {
            throw new IllegalArgumentException("path '" + rel + "' is not relative to the bundle");
        }
        for (String part : rel.split("/", -1)) {
            if (part.isEmpty() || part.equals("..") || part.equals(".")) {
                throw new IllegalArgumentException("path '" + rel + "' points outside the bundle");
            }
        }
        return rel;
    }

    private static List<Artifact> readArtifacts(List<Object> list) {
        List<Artifact> out = new ArrayList<>();
        for (Object o : list) {
            Map<String, Object> a = Json.obj(o, "artifacts[]");
            Map<String, String> tensors = new LinkedHashMap<>();
            if (a.get("inputs") != null) {
                for (Object in : Json.arr(a.get("inputs"), "artifacts[].inputs")) {
                    Map<String, Object> spec = Json.obj(in, "artifacts[].inputs[]");
                    String name = Json.str(spec.get("name"), "inputs[].name");
                    tensors.put(name, spec.get("tensor") instanceof String ? (String) spec.get("tensor") : name);
                }
            }
            List<Signature> signatures = new ArrayList<>();
            if (a.get("signatures") != null) {
                for (Object s : Json.arr(a.get("signatures"), "artifacts[].signatures")) {
                    Map<String, Object> sig = Json.obj(s, "artifacts[].signatures[]");
                    signatures.add(new Signature(Json.str(sig.get("name"), "signatures[].name"),
                            (int) Json.integer(sig.get("sequence_length"), "signatures[].sequence_length")));
                }
            }
            Collections.sort(signatures, (x, y) -> Integer.compare(x.sequenceLength, y.sequenceLength));
            String format = Json.str(a.get("format"), "artifacts[].format");
            if ("tflite".equals(format) && signatures.isEmpty()) {
                throw new IllegalArgumentException("the tflite artifact lists no signatures");
            }
            String signatureOutput = "output_0";
            if (a.get("outputs") != null && !Json.arr(a.get("outputs"), "artifacts[].outputs").isEmpty()) {
                Object key = Json.obj(Json.arr(a.get("outputs"), "artifacts[].outputs").get(0), "outputs[]").get("signature_output");
                if (key instanceof String) signatureOutput = (String) key;
            }
            out.add(new Artifact(
                    checkPath(Json.str(a.get("path"), "artifacts[].path")),
                    format,
                    a.get("precision") instanceof String ? (String) a.get("precision") : "",
                    Collections.unmodifiableList(signatures),
                    Json.str(a.get("sha256"), "artifacts[].sha256"),
                    a.get("bytes") == null ? -1 : Json.integer(a.get("bytes"), "artifacts[].bytes"),
                    Collections.unmodifiableMap(tensors), signatureOutput));
        }
        List<String> seen = new ArrayList<>();
        for (Artifact a : out) {
            if (seen.contains(a.format)) throw new IllegalArgumentException("more than one " + a.format + " artifact");
            seen.add(a.format);
        }
        return out;
    }

    private static List<GoldenCase> readGolden(Object golden) {
        List<GoldenCase> out = new ArrayList<>();
        if (golden == null) return out;
        for (Object o : Json.arr(golden, "golden")) {
            Map<String, Object> g = Json.obj(o, "golden[]");
            Map<String, Map<String, float[]>> expected = new LinkedHashMap<>();
            for (Map.Entry<String, Object> e : Json.obj(g.get("expected"), "golden[].expected").entrySet()) {
                Map<String, float[]> bySignature = new LinkedHashMap<>();
                String where = "golden[].expected." + e.getKey();
                if (e.getValue() instanceof Map) {  // a format with signatures: {"seq32": [...], ...}
                    for (Map.Entry<String, Object> s : Json.obj(e.getValue(), where).entrySet()) {
                        bySignature.put(s.getKey(), Json.floats(s.getValue(), where + "." + s.getKey()));
                    }
                } else {
                    bySignature.put("", Json.floats(e.getValue(), where));
                }
                expected.put(e.getKey(), Collections.unmodifiableMap(bySignature));
            }
            out.add(new GoldenCase(Json.str(g.get("text"), "golden[].text"), Json.ints(g.get("ids"), "golden[].ids"),
                    Collections.unmodifiableMap(expected)));
        }
        return out;
    }
}
