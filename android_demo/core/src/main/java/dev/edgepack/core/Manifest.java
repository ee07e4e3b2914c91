package dev.edgepack.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The parts of {@code edgepack.json} an app needs, read once and checked: tokenizer facts, the model
 * artifacts per sequence bucket, the sha256 of every file, and the golden cases. Field names follow
 * edgepack/stages/bundle.py, the Python side that writes them.
 */
public final class Manifest {
    /** The newest manifest format this reader understands (edgepack_runtime.FORMAT_VERSION). */
    public static final int FORMAT_VERSION = 1;
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

    public static final class Artifact {
        public final String path;
        public final String format;
        public final String precision;
        /** 0 when the artifact takes any length (ONNX). */
        public final int sequenceLength;
        public final String sha256;
        public final long bytes;
        /** logical input name ("input_ids", "attention_mask") -> the interpreter's tensor name. */
        public final Map<String, String> inputTensors;

        Artifact(String path, String format, String precision, int sequenceLength, String sha256, long bytes,
                 Map<String, String> inputTensors) {
            this.path = path;
            this.format = format;
            this.precision = precision;
            this.sequenceLength = sequenceLength;
            this.sha256 = sha256;
            this.bytes = bytes;
            this.inputTensors = inputTensors;
        }
    }

    public static final class GoldenCase {
        public final String text;
        public final int[] ids;
        /** format ("tflite", "onnx") -> the output the build recorded for {@link #ids}. */
        public final Map<String, float[]> expected;

        GoldenCase(String text, int[] ids, Map<String, float[]> expected) {
            this.text = text;
            this.ids = ids;
            this.expected = expected;
        }
    }

    private Manifest(Map<String, Object> m) throws BundleException {
        try {
            formatVersion = (int) Json.integer(m.get("format_version"), "format_version");
            if (formatVersion > FORMAT_VERSION) {
                throw new BundleException("bundle format " + formatVersion + " is newer than this app reads ("
                        + FORMAT_VERSION + "); update the app's edgepack core");
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

    /** The artifacts of one format, smallest sequence bucket first. */
    public List<Artifact> artifacts(String format) {
        List<Artifact> out = new ArrayList<>();
        for (Artifact a : artifacts) if (a.format.equals(format)) out.add(a);
        Collections.sort(out, (a, b) -> Integer.compare(a.sequenceLength, b.sequenceLength));
        return out;
    }

    /** Sequence buckets of the static-shape (.tflite) models, ascending. */
    public int[] buckets(String format) {
        List<Artifact> list = artifacts(format);
        int[] out = new int[list.size()];
        for (int i = 0; i < out.length; i++) out[i] = list.get(i).sequenceLength;
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
            Object seq = a.get("sequence_length");
            out.add(new Artifact(
                    checkPath(Json.str(a.get("path"), "artifacts[].path")),
                    Json.str(a.get("format"), "artifacts[].format"),
                    a.get("precision") instanceof String ? (String) a.get("precision") : "",
                    seq == null ? 0 : (int) Json.integer(seq, "artifacts[].sequence_length"),
                    Json.str(a.get("sha256"), "artifacts[].sha256"),
                    a.get("bytes") == null ? -1 : Json.integer(a.get("bytes"), "artifacts[].bytes"),
                    Collections.unmodifiableMap(tensors)));
        }
        return out;
    }

    private static List<GoldenCase> readGolden(Object golden) {
        List<GoldenCase> out = new ArrayList<>();
        if (golden == null) return out;
        for (Object o : Json.arr(golden, "golden")) {
            Map<String, Object> g = Json.obj(o, "golden[]");
            Map<String, float[]> expected = new LinkedHashMap<>();
            for (Map.Entry<String, Object> e : Json.obj(g.get("expected"), "golden[].expected").entrySet()) {
                expected.put(e.getKey(), Json.floats(e.getValue(), "golden[].expected." + e.getKey()));
            }
            out.add(new GoldenCase(Json.str(g.get("text"), "golden[].text"), Json.ints(g.get("ids"), "golden[].ids"),
                    Collections.unmodifiableMap(expected)));
        }
        return out;
    }
}
