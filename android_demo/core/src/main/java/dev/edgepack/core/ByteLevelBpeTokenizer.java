package dev.edgepack.core;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Byte-level BPE as Hugging Face `tokenizers` runs RoBERTa's and GPT-2's tokenizer.json: added tokens split
 * out of the raw text, optional NFKC, the ByteLevel pre-tokenizer (GPT-2's split regex, then every UTF-8
 * byte as one printable character), BPE merges by rank, cls … sep, truncation at max_length.
 *
 * <p>The split regex {@code 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+}
 * is matched by hand, not with java.util.regex, whose {@code \s} is ASCII-only: {@code \s} is Unicode
 * White_Space as in the Oniguruma engine the Rust crate uses, letters and numbers are general categories L*
 * and N*, and everything counts in code points.
 */
public final class ByteLevelBpeTokenizer extends SegmentTokenizer {
    /** GPT-2's bytes_to_unicode: printable bytes map to themselves, the other 68 to U+0100 onwards. */
    static final char[] BYTE_CHARS = new char[256];

    static {
        int n = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            BYTE_CHARS[b] = printable ? (char) b : (char) (256 + n++);
        }
    }

    private final Map<String, Integer> vocab;
    /** "left right" -> rank (lower merges first). */
    private final Map<String, Integer> ranks;
    private final boolean addPrefixSpace;
    private final boolean ignoreMerges;

    ByteLevelBpeTokenizer(TokenizerSpec spec, Map<String, Object> model, int maxLength) throws BundleException {
        super(spec, maxLength, "the special tokens");
        Map<String, Object> v = Json.obj(model.get("vocab"), "model.vocab");
        vocab = new HashMap<>(v.size() * 2);
        for (Map.Entry<String, Object> e : v.entrySet()) vocab.put(e.getKey(), (int) Json.integer(e.getValue(), "vocab id"));
        if (spec.vocabSize >= 0 && vocab.size() != spec.vocabSize) {
            throw new BundleException("tokenizer.json has " + vocab.size() + " tokens, the manifest says " + spec.vocabSize);
        }
        List<Object> merges = Json.arr(model.get("merges"), "model.merges");
        ranks = new HashMap<>(merges.size() * 2);
        for (int i = 0; i < merges.size(); i++) {
            Object m = merges.get(i);
            // tokenizers >= 0.20 writes ["a", "b"]; older files "a b".
            String key = m instanceof String ? (String) m
                    : Json.str(Json.arr(m, "merge").get(0), "merge") + " " + Json.str(Json.arr(m, "merge").get(1), "merge");
            if (!ranks.containsKey(key)) ranks.put(key, i);
        }
        addPrefixSpace = spec.addPrefixSpace;
        ignoreMerges = spec.ignoreMerges;
    }

    @Override
    protected void encodeSegment(String segment, boolean first, List<Integer> out) {
        String s = spec.normalize(segment);
        if (s.isEmpty()) return;
        if (addPrefixSpace && !s.startsWith(" ")) s = " " + s;
        for (String word : splitWords(s)) bpe(toByteChars(word), out);
    }

    static String toByteChars(String word) {
        byte[] bytes = word.getBytes(StandardCharsets.UTF_8);
        StringBuilder sb = new StringBuilder(bytes.length);
        for (byte b : bytes) sb.append(BYTE_CHARS[b & 0xFF]);
        return sb.toString();
    }

    /** Greedy BPE: merge the lowest-ranked adjacent pair (leftmost among equals) until none is in the table. */
    private void bpe(String word, List<Integer> out) {
        if (ignoreMerges && vocab.containsKey(word)) {
            out.add(vocab.get(word));
            return;
        }
        List<String> symbols = new ArrayList<>(word.length());
        for (int i = 0; i < word.length(); i++) symbols.add(String.valueOf(word.charAt(i)));
        while (symbols.size() > 1) {
            int best = -1;
            int bestRank = Integer.MAX_VALUE;
            for (int i = 0; i + 1 < symbols.size(); i++) {
                Integer r = ranks.get(symbols.get(i) + " " + symbols.get(i + 1));
                if (r != null && r < bestRank) { bestRank = r; best = i; }
            }
            if (best < 0) break;
            symbols.set(best, symbols.get(best) + symbols.get(best + 1));
            symbols.remove(best + 1);
        }
        for (String s : symbols) {
            Integer id = vocab.get(s);
            // Every byte character is in a byte-level vocabulary; a pruned or broken one falls back to unk.
            if (id != null) out.add(id);
            else if (spec.unkId >= 0) out.add(spec.unkId);
        }
    }

    /** GPT-2's split regex, by hand (see the class comment), over code points. */
    static List<String> splitWords(String s) {
        List<String> out = new ArrayList<>();
        int[] cps = s.codePoints().toArray();
        int n = cps.length;
        int i = 0;
        while (i < n) {
            int end = match(cps, i);
            out.add(new String(cps, i, end - i));
            i = end;
        }
        return out;
    }

    private static int match(int[] c, int i) {
        int n = c.length;
        // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive, ASCII apostrophe)
        if (c[i] == '\'' && i + 1 < n) {
            int a = c[i + 1];
            if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
            if (i + 2 < n) {
                int b = c[i + 2];
                if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
            }
        }
        int j = (c[i] == ' ' && i + 1 < n) ? i + 1 : i;  // the optional leading space of the next three
        for (int kind = 0; kind < 3; kind++) {
            for (int start : j == i ? new int[] {i} : new int[] {j, i}) {
                int k = start;
                while (k < n && classOf(c[k]) == kind) k++;
                if (k > start) return k;
            }
        }
        // \s+(?!\S) then \s+
        int k = i;
        while (k < n && WordPieceTokenizer.isWhitespace(c[k])) k++;
        if (k == n || k - i == 1) return k;
        return k - 1;  // leave the last space to lead the next word
    }

    /** 0 letter (\p{L}), 1 number (\p{N}), 2 other non-space, 3 whitespace. */
    private static int classOf(int cp) {
        if (WordPieceTokenizer.isWhitespace(cp)) return 3;
        switch (Character.getType(cp)) {
            case Character.UPPERCASE_LETTER: case Character.LOWERCASE_LETTER: case Character.TITLECASE_LETTER:
            case Character.MODIFIER_LETTER: case Character.OTHER_LETTER:
                return 0;
            case Character.DECIMAL_DIGIT_NUMBER: case Character.LETTER_NUMBER: case Character.OTHER_NUMBER:
                return 1;
            default:
                return 2;
        }
    }
}
