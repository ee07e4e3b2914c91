package dev.edgepack.core;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * SentencePiece Unigram as Hugging Face `tokenizers` runs an XLM-R style tokenizer.json: added tokens split
 * out of the raw text, optional NFKC, the Metaspace pre-tokenizer (spaces become the replacement character,
 * which is prepended and starts each word), the best-scoring segmentation of each word, cls … sep,
 * truncation at max_length.
 *
 * <p>The segmentation follows `Unigram::encode_optimized` in the Rust crate step for step, so ties resolve
 * the same way: positions left to right, at each position the pieces shortest first, a candidate replaces
 * the best path into its end only when strictly better; a character no piece covers alone becomes an
 * unknown node scored min_score - 10, and runs of unknown nodes fuse into one unk id.
 */
public final class UnigramTokenizer extends SegmentTokenizer {
    private static final double UNK_PENALTY = 10.0;

    private final double[] scores;
    private final Trie trie = new Trie();
    private final double unkScore;

    /** Pieces by UTF-16 unit; a piece is a whole string, so matching units matches Rust's bytes. */
    private static final class Trie {
        final Map<Character, Trie> next = new HashMap<>();
        int id = -1;
    }

    UnigramTokenizer(TokenizerSpec spec, Map<String, Object> model, int maxLength) throws BundleException {
        super(spec, maxLength, "the special tokens");
        List<Object> vocab = Json.arr(model.get("vocab"), "model.vocab");
        if (spec.vocabSize >= 0 && vocab.size() != spec.vocabSize) {
            throw new BundleException("tokenizer.json has " + vocab.size() + " pieces, the manifest says " + spec.vocabSize);
        }
        if (spec.unkId < 0 || spec.unkId >= vocab.size()) throw new BundleException("Unigram tokenizer without an unknown piece");
        scores = new double[vocab.size()];
        double min = Double.POSITIVE_INFINITY;
        for (int id = 0; id < vocab.size(); id++) {
            List<Object> entry = Json.arr(vocab.get(id), "model.vocab[]");
            String piece = Json.str(entry.get(0), "piece");
            scores[id] = Json.num(entry.get(1), "score");
            min = Math.min(min, scores[id]);
            Trie node = trie;
            for (int k = 0; k < piece.length(); k++) {
                Trie child = node.next.get(piece.charAt(k));
                if (child == null) node.next.put(piece.charAt(k), child = new Trie());
                node = child;
            }
            if (node.id < 0) node.id = id;  // Rust keeps the first id of a repeated piece
        }
        unkScore = min - UNK_PENALTY;
    }

    @Override
    protected void encodeSegment(String segment, boolean first, List<Integer> out) {
        String s = spec.normalize(segment);
        if (!s.isEmpty()) for (String word : metaspace(s, first)) segment(word, out);
    }

    /** Metaspace: ' ' becomes the replacement, prepended per prepend_scheme, split before each replacement. */
    List<String> metaspace(String s, boolean firstSegment) {
        String r = spec.metaspaceReplacement;
        s = s.replace(" ", r);
        boolean prepend = "always".equals(spec.metaspacePrependScheme)
                || ("first".equals(spec.metaspacePrependScheme) && firstSegment);
        if (prepend && !s.startsWith(r)) s = r + s;
        List<String> words = new ArrayList<>();
        if (!spec.metaspaceSplit) {
            words.add(s);
            return words;
        }
        int start = 0;
        for (int i = s.indexOf(r, 1); i >= 0; i = s.indexOf(r, i + r.length())) {
            words.add(s.substring(start, i));
            start = i;
        }
        words.add(s.substring(start));
        return words;
    }

    /** The best segmentation of one word (Rust's encode_optimized), appended as ids. */
    void segment(String w, List<Integer> out) {
        int n = w.length();
        double[] best = new double[n + 1];
        int[] from = new int[n + 1];
        int[] id = new int[n + 1];
        java.util.Arrays.fill(from, -1);
        for (int start = 0; start < n; start = next(w, start)) {
            if (start > 0 && from[start] < 0) continue;  // unreachable (cannot happen: unknown nodes cover all)
            int charEnd = next(w, start);
            boolean single = false;
            Trie node = trie;
            for (int k = start; k < n; k++) {
                node = node.next.get(w.charAt(k));
                if (node == null) break;
                if (node.id < 0) continue;
                int end = k + 1;
                double candidate = best[start] + scores[node.id];
                if (from[end] < 0 || candidate > best[end]) {
                    best[end] = candidate;
                    from[end] = start;
                    id[end] = node.id;
                }
                if (end == charEnd) single = true;
            }
            if (!single) {
                double candidate = best[start] + unkScore;
                if (from[charEnd] < 0 || candidate > best[charEnd]) {
                    best[charEnd] = candidate;
                    from[charEnd] = start;
                    id[charEnd] = spec.unkId;
                }
            }
        }
        List<Integer> reversed = new ArrayList<>();
        boolean inUnk = false;
        for (int end = n; end > 0; end = from[end]) {
            boolean unk = id[end] == spec.unkId;
            // A run of unknown characters becomes one token; its string is not a piece, so it is unk.
            if (!(unk && inUnk)) reversed.add(id[end]);
            inUnk = unk;
        }
        for (int i = reversed.size() - 1; i >= 0; i--) out.add(reversed.get(i));
    }

    private static int next(String s, int i) {
        return i + Character.charCount(s.codePointAt(i));
    }
}
