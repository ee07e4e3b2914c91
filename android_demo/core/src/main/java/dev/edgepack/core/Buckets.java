package dev.edgepack.core;

/**
 * A static-shape model has one signature per sequence bucket; running a 12-token note through the 128
 * bucket costs ~6x the 32 one, so each input goes to the smallest bucket that holds it.
 */
public final class Buckets {
    private Buckets() {}

    /** Index of the smallest bucket >= length; the largest when none is (the tokenizer truncates to it). */
    public static int choose(int[] ascendingBuckets, int length) {
        if (ascendingBuckets.length == 0) throw new IllegalArgumentException("no sequence buckets");
        for (int i = 0; i < ascendingBuckets.length; i++) {
            if (ascendingBuckets[i] >= length) return i;
        }
        return ascendingBuckets.length - 1;
    }

    /** input_ids padded with padId to the bucket, cut to it if longer. */
    public static int[] padIds(int[] ids, int bucket, int padId) {
        int[] out = new int[bucket];
        int n = Math.min(ids.length, bucket);
        System.arraycopy(ids, 0, out, 0, n);
        for (int i = n; i < bucket; i++) out[i] = padId;
        return out;
    }

    /** attention_mask: 1 over the real tokens, 0 over the padding. */
    public static int[] mask(int length, int bucket) {
        int[] out = new int[bucket];
        for (int i = 0; i < Math.min(length, bucket); i++) out[i] = 1;
        return out;
    }
}
