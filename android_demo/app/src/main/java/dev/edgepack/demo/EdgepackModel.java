package dev.edgepack.demo;

import android.content.res.AssetManager;

import dev.edgepack.core.BundleException;
import dev.edgepack.core.EdgepackBundle;
import dev.edgepack.core.GoldenCheck;
import dev.edgepack.core.Manifest;

import org.tensorflow.lite.DataType;
import org.tensorflow.lite.Interpreter;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.Map;

/**
 * The bundle in assets/edgepack/ on LiteRT: one interpreter per sequence bucket, created on first use from
 * bytes whose sha256 matched the manifest. Everything that is not the interpreter lives in the core module.
 * Not thread-safe: MainActivity calls it from one background thread.
 */
final class EdgepackModel implements AutoCloseable {
    static final String ASSET_DIR = "edgepack";

    final EdgepackBundle bundle;
    private final Interpreter[] interpreters;
    private final int threads;

    /** One model output and what it cost. */
    static final class Run {
        final float[] output;
        final int tokens;
        final int bucket;
        final double millis;

        Run(float[] output, int tokens, int bucket, double millis) {
            this.output = output;
            this.tokens = tokens;
            this.bucket = bucket;
            this.millis = millis;
        }
    }

    private EdgepackModel(EdgepackBundle bundle, int threads) {
        this.bundle = bundle;
        this.threads = threads;
        this.interpreters = new Interpreter[bundle.models.size()];
    }

    static EdgepackModel open(final AssetManager assets, int threads) throws IOException, BundleException {
        EdgepackBundle bundle = EdgepackBundle.open(rel -> assets.open(ASSET_DIR + "/" + rel), "tflite");
        return new EdgepackModel(bundle, threads);
    }

    Run run(String text) throws IOException, BundleException {
        return runIds(bundle.tokenizer.encode(text));
    }

    Run runIds(int[] ids) throws IOException, BundleException {
        EdgepackBundle.Input in = bundle.prepareIds(ids);
        Manifest.Artifact artifact = bundle.models.get(in.model);
        Interpreter interpreter = interpreterFor(in.model);
        Object[] inputs = new Object[interpreter.getInputTensorCount()];
        setInput(interpreter, inputs, artifact, "input_ids", in.paddedIds);
        setInput(interpreter, inputs, artifact, "attention_mask", in.attentionMask);
        for (int i = 0; i < inputs.length; i++) {
            if (inputs[i] == null) throw new BundleException(artifact.path + ": input " + i + " is not described by the manifest");
        }
        int[] shape = interpreter.getOutputTensor(0).shape();
        float[][] out = new float[1][shape[shape.length - 1]];
        Map<Integer, Object> outputs = new HashMap<>();
        outputs.put(0, out);
        long start = System.nanoTime();
        interpreter.runForMultipleInputsOutputs(inputs, outputs);
        double millis = (System.nanoTime() - start) / 1e6;
        return new Run(out[0], ids.length, artifact.sequenceLength, millis);
    }

    /** Runs the manifest's golden ids on this phone; null when all match within the build's tolerance. */
    String checkGolden() throws IOException, BundleException {
        int ok = 0;
        StringBuilder problems = new StringBuilder();
        for (Manifest.GoldenCase g : bundle.manifest.golden) {
            float[] expected = g.expected.get("tflite");
            if (expected == null) continue;
            String why = GoldenCheck.mismatch(expected, runIds(g.ids).output, bundle.manifest.goldenTolerance);
            if (why == null) ok++;
            else problems.append("\n  \"").append(g.text.length() > 40 ? g.text.substring(0, 40) + "…" : g.text).append("\": ").append(why);
        }
        return problems.length() == 0 ? null : ok + "/" + bundle.manifest.golden.size() + " golden cases match:" + problems;
    }

    private static void setInput(Interpreter interpreter, Object[] inputs, Manifest.Artifact artifact, String name, int[] values)
            throws BundleException {
        String tensor = artifact.inputTensors.get(name);
        if (tensor == null) throw new BundleException(artifact.path + ": the manifest has no " + name + " input");
        int index = interpreter.getInputIndex(tensor);
        if (interpreter.getInputTensor(index).dataType() == DataType.INT64) {
            long[] wide = new long[values.length];
            for (int i = 0; i < values.length; i++) wide[i] = values[i];
            inputs[index] = new long[][] {wide};
        } else {
            inputs[index] = new int[][] {values};
        }
    }

    private Interpreter interpreterFor(int model) throws IOException, BundleException {
        if (interpreters[model] == null) {
            // The interpreter gets exactly the bytes that were hashed: no second read that could differ.
            byte[] bytes = bundle.readVerified(bundle.models.get(model).path);
            ByteBuffer buffer = ByteBuffer.allocateDirect(bytes.length).order(ByteOrder.nativeOrder());
            buffer.put(bytes).rewind();
            Interpreter.Options options = new Interpreter.Options().setNumThreads(threads).setUseXNNPACK(true);
            interpreters[model] = new Interpreter(buffer, options);
        }
        return interpreters[model];
    }

    @Override
    public void close() {
        for (int i = 0; i < interpreters.length; i++) {
            if (interpreters[i] != null) interpreters[i].close();
            interpreters[i] = null;
        }
    }
}
