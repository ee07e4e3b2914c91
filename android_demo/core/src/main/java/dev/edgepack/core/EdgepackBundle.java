package dev.edgepack.core;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * An opened bundle: manifest read, tokenizer files verified against their sha256, tokenizer ready, signatures known.
 * A format has one model file; a .tflite holds one signature per sequence bucket ("seq32", "seq64", ...)
 * sharing one copy of the weights, and each input runs through the shortest signature that holds it.
 * Model bytes are read through {@link #readVerified} so the interpreter only ever sees bytes whose hash
 * matched (hashing a file and then loading it again would leave a window to swap it).
 *
 * <p>Where the files come from is a {@link Source}: Android assets in the app, a directory on the JVM.
 */
public final class EdgepackBundle {
    public interface Source {
        InputStream open(String relativePath) throws IOException;
    }

    /** A bundle directory on disk (JVM tests, or a bundle downloaded into app storage). */
    public static Source directory(final File root) {
        return rel -> new FileInputStream(new File(root, rel));
    }

    public final Manifest manifest;
    public final Tokenizer tokenizer;
    public final String format;
    /** The chosen format's one model file. */
    public final Manifest.Artifact model;
    /** Its signatures' sequence lengths, ascending; {0} for a dynamic-shape format (one entry point). */
    public final int[] buckets;
    /** The signature name per entry of {@link #buckets}; {null} for a dynamic-shape format. */
    public final String[] signatures;
    private final Source source;

    private EdgepackBundle(Source source, Manifest manifest, String format, Tokenizer tokenizer) {
        this.source = source;
        this.manifest = manifest;
        this.format = format;
        this.model = manifest.artifact(format);
        int[] b = manifest.buckets(format);
        this.buckets = b.length == 0 ? new int[] {0} : b;
        this.signatures = new String[buckets.length];
        for (int i = 0; i < b.length; i++) signatures[i] = model.signatures.get(i).name;
        this.tokenizer = tokenizer;
    }

    /** Opens the bundle for one model format ("tflite" in the app). */
    public static EdgepackBundle open(Source source, String format) throws IOException, BundleException {
        byte[] raw;
        try (InputStream in = source.open(Manifest.FILE)) {
            raw = WordPieceTokenizer.readAll(in);
        } catch (java.io.FileNotFoundException e) {
            throw new BundleException("not an edgepack bundle (no " + Manifest.FILE + ")", e);
        }
        Manifest m = Manifest.parse(new String(raw, StandardCharsets.UTF_8));
        Manifest.Artifact chosen = m.artifact(format);
        if (chosen == null) {
            List<String> have = new ArrayList<>();
            for (Manifest.Artifact a : m.artifacts) if (!have.contains(a.format)) have.add(a.format);
            throw new BundleException("bundle has no " + format + " model (has: " + have + ")");
        }
        // Static shapes cap the length: the largest bucket is the longest input the model accepts.
        int maxLength = m.tokenizer.maxLength;
        int[] buckets = m.buckets(format);
        if (buckets.length > 0) maxLength = Math.min(maxLength, buckets[buckets.length - 1]);
        EdgepackBundle partial = new EdgepackBundle(source, m, format, null);
        // Only verified bytes reach the tokenizer: vocab.txt for WordPiece, tokenizer.json for BPE and Unigram.
        boolean wordPiece = "WordPiece".equals(m.tokenizer.type);
        byte[] vocab = wordPiece ? partial.readVerified(m.tokenizer.vocabFile) : null;
        byte[] spec = wordPiece ? null : partial.readVerified(m.tokenizer.file);
        return new EdgepackBundle(source, m, format, Tokenizer.open(m.tokenizer, vocab, spec, maxLength));
    }

    /** The file's bytes, after checking them against the manifest's sha256 (and the artifact's, for models). */
    public byte[] readVerified(String relativePath) throws IOException, BundleException {
        String expected = manifest.fileSha256.get(Manifest.checkPath(relativePath));
        if (expected == null) throw new BundleException.Integrity(relativePath + ": not listed in the manifest; refusing to load it");
        byte[] data;
        try (InputStream in = source.open(relativePath)) {
            data = WordPieceTokenizer.readAll(in);
        } catch (java.io.FileNotFoundException e) {
            throw new BundleException.Integrity(relativePath + ": listed in the manifest but missing");
        }
        Sha256.verify(relativePath, data, expected);
        for (Manifest.Artifact a : manifest.artifacts) {
            if (a.path.equals(relativePath)) Sha256.verify(relativePath, data, a.sha256);
        }
        return data;
    }

    /** Checks every file the manifest lists; returns the first problem, or null when all match. */
    public String verifyAll() throws IOException {
        for (String rel : manifest.fileSha256.keySet()) {
            try {
                readVerified(rel);
            } catch (BundleException e) {
                return e.getMessage();
            }
        }
        return null;
    }

    /** Index into {@link #buckets} / {@link #signatures} of the smallest bucket that holds these ids. */
    public int signatureFor(int[] ids) {
        return Buckets.choose(buckets, ids.length);
    }

    /** Tokenised, bucketed and padded input for one text: what the interpreter's signature is fed. */
    public static final class Input {
        public final int[] ids;
        /** Index into {@link EdgepackBundle#buckets}. */
        public final int bucket;
        /** The signature to run ("seq32"); null for a dynamic-shape format. */
        public final String signature;
        public final int[] paddedIds;
        public final int[] attentionMask;

        Input(int[] ids, int bucket, String signature, int[] paddedIds, int[] attentionMask) {
            this.ids = ids;
            this.bucket = bucket;
            this.signature = signature;
            this.paddedIds = paddedIds;
            this.attentionMask = attentionMask;
        }
    }

    public Input prepare(String text) {
        return prepareIds(tokenizer.encode(text));
    }

    public Input prepareIds(int[] ids) {
        return prepareAt(ids, signatureFor(ids));
    }

    /**
     * The input for one named signature, not the shortest that fits: golden cases run through every
     * signature they fit in. Throws IllegalArgumentException for an unknown signature or one too short.
     */
    public Input prepareIds(int[] ids, String signature) {
        for (int i = 0; i < signatures.length; i++) {
            if (signature != null && signature.equals(signatures[i])) {
                if (buckets[i] < ids.length) {
                    throw new IllegalArgumentException(ids.length + " ids do not fit signature " + signature + " (" + buckets[i] + ")");
                }
                return prepareAt(ids, i);
            }
        }
        throw new IllegalArgumentException("no signature " + signature + " in " + model.path);
    }

    private Input prepareAt(int[] ids, int i) {
        int bucket = buckets[i] > 0 ? buckets[i] : ids.length;
        return new Input(ids, i, signatures[i], Buckets.padIds(ids, bucket, tokenizer.padId()), Buckets.mask(ids.length, bucket));
    }
}
