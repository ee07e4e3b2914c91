package dev.edgepack.demo;

import android.content.res.AssetManager;

import dev.edgepack.core.BundleException;
import dev.edgepack.core.EdgepackBundle;
import dev.edgepack.core.GoldenCheck;
import dev.edgepack.core.Manifest;

import org.tensorflow.lite.Interpreter;
import org.tensorflow.lite.Tensor;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.Map;

/**
 * The bundle in assets/edgepack/ on LiteRT: ONE interpreter for model.tflite, created on first use from
 * bytes whose sha256 matched the manifest; each input runs through the signature of the shortest
 * sequence bucket that holds it (Interpreter.runSignature; the signatures share the weights, issue #12).
 * Everything that is not the interpreter lives in the core module.
 * Not thread-safe: MainActivity calls it from one background thread.
 */
final class EdgepackModel implements AutoCloseable {
    static final String ASSET_DIR = "edgepack";

    final EdgepackBundle bundle;
    private Interpreter interpreter;
    private final int threads;

    /** One model output and what it cost. */
    static final class Run {
        final float[] output;
        final int tokens;
        final int bucket;
        final String signature;
        final double millis;

        Run(float[] output, int tokens, int bucket, String signature, double millis) {
            this.output = output;
            this.tokens = tokens;
            this.bucket = bucket;
            this.signature = signature;
            this.millis = millis;
        }
    }

    private EdgepackModel(EdgepackBundle bundle, int threads) {
        this.bundle = bundle;
        this.threads = threads;
    }

    static EdgepackModel open(final AssetManager assets, int threads) throws IOException, BundleException {
        EdgepackBundle bundle = EdgepackBundle.open(rel -> assets.open(ASSET_DIR + "/" + rel), "tflite");
        return new EdgepackModel(bundle, threads);
    }

    Run run(String text) throws IOException, BundleException {
        return runIds(bundle.tokenizer.encode(text));
    }

    /** Through the shortest signature that holds the ids. */
    Run runIds(int[] ids) throws IOException, BundleException {
        return runInput(bundle.prepareIds(ids));
    }

    /** Through one named signature ("seq64"): golden cases run through each one they fit in. */
    Run runIds(int[] ids, String signature) throws IOException, BundleException {
        try {
            return runInput(bundle.prepareIds(ids, signature));
        } catch (IllegalArgumentException e) {
            throw new BundleException(e.getMessage(), e);
        }
    }

    private Run runInput(EdgepackBundle.Input in) throws IOException, BundleException {
        Manifest.Artifact artifact = bundle.model;
        Interpreter interp = interpreter();
        Map<String, Object> inputs = new HashMap<>();
        inputs.put(inputName(artifact, "input_ids"), new int[][] {in.paddedIds});
        inputs.put(inputName(artifact, "attention_mask"), new int[][] {in.attentionMask});
        float[][] out = new float[1][outputDim(interp, in.signature, artifact)];
        Map<String, Object> outputs = new HashMap<>();
        outputs.put(artifact.signatureOutput, out);
        long start = System.nanoTime();
        interp.runSignature(inputs, outputs, in.signature);
        double millis = (System.nanoTime() - start) / 1e6;
        return new Run(out[0], in.ids.length, bundle.buckets[in.bucket], in.signature, millis);
    }

    /** Runs every golden case through every signature it fits in; null when all match the build's outputs. */
    String checkGolden() throws IOException, BundleException {
        int ok = 0;
        int runs = 0;
        StringBuilder problems = new StringBuilder();
        for (Manifest.GoldenCase g : bundle.manifest.golden) {
            Map<String, float[]> bySignature = g.expected.get("tflite");
            if (bySignature == null) continue;
            for (Map.Entry<String, float[]> e : bySignature.entrySet()) {
                runs++;
                String why = GoldenCheck.mismatch(e.getValue(), runIds(g.ids, e.getKey()).output, bundle.manifest.goldenTolerance);
                if (why == null) ok++;
                else problems.append("\n  ").append(e.getKey()).append(" \"")
                        .append(g.text.length() > 40 ? g.text.substring(0, 40) + "…" : g.text).append("\": ").append(why);
            }
        }
        return problems.length() == 0 ? null : ok + "/" + runs + " golden runs (case × signature) match:" + problems;
    }

    private static String inputName(Manifest.Artifact artifact, String name) throws BundleException {
        String key = artifact.inputTensors.get(name);
        if (key == null) throw new BundleException(artifact.path + ": the manifest has no " + name + " input");
        return key;
    }

    private static int outputDim(Interpreter interp, String signature, Manifest.Artifact artifact) throws BundleException {
        Tensor t = interp.getOutputTensorFromSignature(artifact.signatureOutput, signature);
        if (t == null) throw new BundleException(artifact.path + ": signature " + signature + " has no output " + artifact.signatureOutput);
        int[] shape = t.shape();
        return shape[shape.length - 1];
    }

    private Interpreter interpreter() throws IOException, BundleException {
        if (interpreter == null) {
            // The interpreter gets exactly the bytes that were hashed: no second read that could differ.
            byte[] bytes = bundle.readVerified(bundle.model.path);
            ByteBuffer buffer = ByteBuffer.allocateDirect(bytes.length).order(ByteOrder.nativeOrder());
            buffer.put(bytes).rewind();
            Interpreter.Options options = new Interpreter.Options().setNumThreads(threads).setUseXNNPACK(true);
            Interpreter created = new Interpreter(buffer, options);
            // Refuse a file whose signatures are not the ones the manifest lists (one clear line).
            java.util.List<String> have = java.util.Arrays.asList(created.getSignatureKeys());
            for (String name : bundle.signatures) {
                if (!have.contains(name)) {
                    created.close();
                    throw new BundleException(bundle.model.path + ": no signature " + name + " (has: " + have + ")");
                }
            }
            interpreter = created;
        }
        return interpreter;
    }

    @Override
    public void close() {
        if (interpreter != null) interpreter.close();
        interpreter = null;
    }
}
