package dev.edgepack.core;

import java.util.Map;

/**
 * Compares a fresh model output with a golden one the build recorded, with the manifest's tolerance
 * (int8 kernels differ slightly between CPUs). Same rule as edgepack.golden.golden_matches.
 */
public final class GoldenCheck {
    private GoldenCheck() {}

    public static final class Tolerance {
        public final double minCosine;
        public final double maxAbsDiff;
        public final boolean sameArgmax;
        public final boolean classifier;

        Tolerance(double minCosine, double maxAbsDiff, boolean sameArgmax, boolean classifier) {
            this.minCosine = minCosine;
            this.maxAbsDiff = maxAbsDiff;
            this.sameArgmax = sameArgmax;
            this.classifier = classifier;
        }

        static Tolerance from(Object raw, String task) {
            Map<String, Object> t = raw == null ? new java.util.HashMap<String, Object>() : Json.obj(raw, "golden_tolerance");
            return new Tolerance(
                    t.get("min_cosine") == null ? 0.999 : Json.num(t.get("min_cosine"), "golden_tolerance.min_cosine"),
                    t.get("max_abs_diff") == null ? 0.05 : Json.num(t.get("max_abs_diff"), "golden_tolerance.max_abs_diff"),
                    Json.bool(t.get("same_argmax"), true),
                    "text-classification".equals(task));
        }
    }

    /** null when {@code got} matches {@code expected}; otherwise why not, in one line. */
    public static String mismatch(float[] expected, float[] got, Tolerance tol) {
        if (expected.length != got.length) return "length " + got.length + " != expected " + expected.length;
        if (tol.classifier) {
            if (tol.sameArgmax && expected.length > 0 && PostProcess.argmax(expected) != PostProcess.argmax(got)) {
                return "argmax " + PostProcess.argmax(got) + " != expected " + PostProcess.argmax(expected);
            }
            double diff = 0;
            for (int i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs((double) expected[i] - got[i]));
            return diff <= tol.maxAbsDiff ? null : "max |diff| " + diff + " > " + tol.maxAbsDiff;
        }
        double cos = PostProcess.cosine(expected, got);
        return cos >= tol.minCosine ? null : "cosine " + cos + " < " + tol.minCosine;
    }
}
