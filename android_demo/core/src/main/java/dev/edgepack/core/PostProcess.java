package dev.edgepack.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** What the app does with a model's output: normalise, softmax, top-k and cosine ranking. */
public final class PostProcess {
    private PostProcess() {}

    /** L2-normalised copy; a zero vector stays zero rather than becoming NaN. */
    public static float[] l2Normalize(float[] v) {
        double sum = 0;
        for (float x : v) sum += (double) x * x;
        double norm = Math.sqrt(sum);
        float[] out = new float[v.length];
        if (norm < 1e-12) return out;
        for (int i = 0; i < v.length; i++) out[i] = (float) (v[i] / norm);
        return out;
    }

    /** Softmax computed after subtracting the max, so logits of 1000 do not overflow to NaN. */
    public static float[] softmax(float[] logits) {
        float[] out = new float[logits.length];
        if (logits.length == 0) return out;
        double max = Double.NEGATIVE_INFINITY;
        for (float x : logits) max = Math.max(max, x);
        double sum = 0;
        double[] e = new double[logits.length];
        for (int i = 0; i < logits.length; i++) {
            e[i] = Math.exp(logits[i] - max);
            sum += e[i];
        }
        for (int i = 0; i < logits.length; i++) out[i] = (float) (e[i] / sum);
        return out;
    }

    public static double cosine(float[] a, float[] b) {
        if (a.length != b.length) throw new IllegalArgumentException("dimension " + a.length + " != " + b.length);
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.length; i++) {
            dot += (double) a[i] * b[i];
            na += (double) a[i] * a[i];
            nb += (double) b[i] * b[i];
        }
        double denom = Math.sqrt(na) * Math.sqrt(nb);
        return denom < 1e-12 ? 0.0 : dot / denom;
    }

    public static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    /** A scored index: a label's probability, or a note's similarity to the query. */
    public static final class Scored {
        public final int index;
        public final double score;

        public Scored(int index, double score) {
            this.index = index;
            this.score = score;
        }

        @Override
        public String toString() {
            return index + ":" + score;
        }
    }

    /** The k highest scores, best first; ties keep the lower index first so results are stable. */
    public static List<Scored> topK(float[] scores, int k) {
        double[] d = new double[scores.length];
        for (int i = 0; i < d.length; i++) d[i] = scores[i];
        return topK(d, k);
    }

    public static List<Scored> topK(double[] scores, int k) {
        List<Scored> all = new ArrayList<>(scores.length);
        for (int i = 0; i < scores.length; i++) all.add(new Scored(i, scores[i]));
        Collections.sort(all, (a, b) -> a.score != b.score ? Double.compare(b.score, a.score) : Integer.compare(a.index, b.index));
        return new ArrayList<>(all.subList(0, Math.max(0, Math.min(k, all.size()))));
    }

    /** Documents ranked by cosine similarity to the query, best first (the demo's semantic search). */
    public static List<Scored> rankByCosine(float[] query, List<float[]> documents) {
        double[] scores = new double[documents.size()];
        for (int i = 0; i < scores.length; i++) scores[i] = cosine(query, documents.get(i));
        return topK(scores, scores.length);
    }
}
