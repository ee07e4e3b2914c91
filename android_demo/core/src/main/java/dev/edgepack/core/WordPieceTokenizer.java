package dev.edgepack.core;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * BERT's tokenizer as Hugging Face `tokenizers` runs it (BertNormalizer, BertPreTokenizer, WordPiece,
 * [CLS] … [SEP] template, truncation at max_length), re-implemented so the app needs no native tokenizer.
 *
 * <p>Character classes follow the Rust implementation, not Java's look-alikes, because that is what built
 * the golden ids: whitespace is Unicode White_Space (Java's isWhitespace misses U+00A0 and U+202F),
 * "control" is general category Cc/Cf/Co/Cs except \t \n \r, punctuation is any ASCII punctuation
 * (so $ + < = > ^ ` | ~ split) or general category P*, and everything counts in code points, not UTF-16
 * units, so emoji and CJK extension B behave like one character each.
 */
public final class WordPieceTokenizer extends SegmentTokenizer {
    private final Map<String, Integer> vocab;
    private final AddedTokens added;

    public WordPieceTokenizer(List<String> vocabById, TokenizerSpec spec, int maxLength) throws BundleException {
        super(spec, maxLength, "[CLS] and [SEP]");
        if (spec.vocabSize >= 0 && vocabById.size() != spec.vocabSize) {
            throw new BundleException(spec.vocabFile + " has " + vocabById.size() + " tokens, the manifest says "
                    + spec.vocabSize);
        }
        Map<String, Integer> v = new HashMap<>(vocabById.size() * 2);
        for (int i = 0; i < vocabById.size(); i++) v.put(vocabById.get(i), i);
        this.vocab = v;
        int size = vocabById.size();
        for (int id : new int[] {spec.clsId, spec.sepId, spec.padId, spec.unkId}) {
            if (id < 0 || id >= size) throw new BundleException("special token id " + id + " is outside the vocabulary");
        }
        Integer unk = v.get(spec.unkToken);
        if (unk == null || unk != spec.unkId) {
            throw new BundleException(spec.vocabFile + ": " + spec.unkToken + " is not at id " + spec.unkId);
        }
        List<TokenizerSpec.AddedToken> added = new ArrayList<>(spec.addedTokens);
        for (TokenizerSpec.AddedToken t : added) {
            // vocab.txt gives ids by line number; a gap in the build's ids would shift every token after it.
            Integer at = v.get(t.content);
            if (at != null && at != t.id) {
                throw new BundleException(spec.vocabFile + ": " + t.content + " is on line " + at + " but has id " + t.id);
            }
        }
        if (added.isEmpty()) {
            // Manifests written before added_tokens was recorded: BERT's five specials, where present.
            for (String s : new String[] {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
                if (v.containsKey(s)) added.add(new TokenizerSpec.AddedToken(s, v.get(s)));
            }
        }
        this.added = new AddedTokens(added);
    }

    /** Reads vocab.txt: one token per line, the line number is the id. */
    public static List<String> readVocab(InputStream in) throws IOException {
        String text = new String(readAll(in), StandardCharsets.UTF_8);
        List<String> out = new ArrayList<>(Arrays.asList(text.split("\n", -1)));
        // The file ends with a newline, which split() turns into one empty trailing entry.
        if (!out.isEmpty() && out.get(out.size() - 1).isEmpty()) out.remove(out.size() - 1);
        return out;
    }

    static byte[] readAll(InputStream in) throws IOException {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        byte[] block = new byte[1 << 16];
        for (int n; (n = in.read(block)) > 0; ) buf.write(block, 0, n);
        return buf.toByteArray();
    }

    @Override
    protected AddedTokens addedTokens() {
        return added;
    }

    @Override
    protected void encodeSegment(String segment, boolean first, List<Integer> out) {
        for (String word : preTokenize(normalize(segment))) wordPiece(word, out);
    }

    /** BertNormalizer: clean text, space out CJK, strip accents (NFD minus Mn), lowercase — in that order. */
    String normalize(String text) {
        StringBuilder sb = new StringBuilder(text.length() + 8);
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            i += Character.charCount(cp);
            if (spec.cleanText) {
                if (cp == 0 || cp == 0xFFFD || isControl(cp)) continue;
                if (isWhitespace(cp)) cp = ' ';
            }
            if (spec.handleChineseChars && isChinese(cp)) {
                sb.append(' ').appendCodePoint(cp).append(' ');
            } else {
                sb.appendCodePoint(cp);
            }
        }
        String s = sb.toString();
        if (spec.stripAccents) {
            String nfd = Normalizer.normalize(s, Normalizer.Form.NFD);
            StringBuilder kept = new StringBuilder(nfd.length());
            for (int i = 0; i < nfd.length(); ) {
                int cp = nfd.codePointAt(i);
                i += Character.charCount(cp);
                if (Character.getType(cp) != Character.NON_SPACING_MARK) kept.appendCodePoint(cp);
            }
            s = kept.toString();
        }
        if (spec.lowercase) {
            // Per code point: String.toLowerCase on the whole text applies Greek final-sigma context,
            // which Rust's char::to_lowercase (and so the build) does not.
            StringBuilder lower = new StringBuilder(s.length());
            for (int i = 0; i < s.length(); ) {
                int cp = s.codePointAt(i);
                int n = Character.charCount(cp);
                lower.append(s.substring(i, i + n).toLowerCase(Locale.ROOT));
                i += n;
            }
            s = lower.toString();
        }
        return s;
    }

    /** BertPreTokenizer: split on whitespace (dropped) and around each punctuation character (kept). */
    static List<String> preTokenize(String text) {
        List<String> words = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            i += Character.charCount(cp);
            if (isWhitespace(cp)) {
                flush(cur, words);
            } else if (isPunctuation(cp)) {
                flush(cur, words);
                words.add(new String(Character.toChars(cp)));
            } else {
                cur.appendCodePoint(cp);
            }
        }
        flush(cur, words);
        return words;
    }

    private static void flush(StringBuilder cur, List<String> words) {
        if (cur.length() > 0) {
            words.add(cur.toString());
            cur.setLength(0);
        }
    }

    /** Greedy longest-match-first; one unknown piece makes the whole word [UNK]. */
    void wordPiece(String word, List<Integer> out) {
        if (word.codePointCount(0, word.length()) > spec.maxInputCharsPerWord) {
            out.add(spec.unkId);
            return;
        }
        List<Integer> pieces = new ArrayList<>();
        int start = 0;
        while (start < word.length()) {
            int end = word.length();
            Integer found = null;
            while (start < end) {
                String sub = word.substring(start, end);
                if (start > 0) sub = spec.continuingSubwordPrefix + sub;
                found = vocab.get(sub);
                if (found != null) break;
                end -= Character.charCount(word.codePointBefore(end));
            }
            if (found == null) {
                out.add(spec.unkId);
                return;
            }
            pieces.add(found);
            start = end;
        }
        out.addAll(pieces);
    }

    /** Rust's char::is_whitespace (Unicode White_Space), which BERT's normaliser and pre-tokenizer use. */
    static boolean isWhitespace(int cp) {
        switch (cp) {
            case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0: case 0x1680:
            case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
                return true;
            default:
                return cp >= 0x2000 && cp <= 0x200A;
        }
    }

    /** General category Cc, Cf, Co or Cs, except tab, newline and carriage return (counted as whitespace). */
    static boolean isControl(int cp) {
        if (cp == '\t' || cp == '\n' || cp == '\r') return false;
        int t = Character.getType(cp);
        return t == Character.CONTROL || t == Character.FORMAT || t == Character.PRIVATE_USE || t == Character.SURROGATE;
    }

    static boolean isPunctuation(int cp) {
        if ((cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) || (cp >= 0x5B && cp <= 0x60) || (cp >= 0x7B && cp <= 0x7E)) {
            return true;
        }
        switch (Character.getType(cp)) {
            case Character.CONNECTOR_PUNCTUATION: case Character.DASH_PUNCTUATION: case Character.START_PUNCTUATION:
            case Character.END_PUNCTUATION: case Character.INITIAL_QUOTE_PUNCTUATION: case Character.FINAL_QUOTE_PUNCTUATION:
            case Character.OTHER_PUNCTUATION:
                return true;
            default:
                return false;
        }
    }

    /**
     * The CJK blocks BERT spaces out. 0x2B920 (not 0x2B820) is deliberate: it is what the Rust
     * normaliser that built the golden ids uses, so U+2B820..U+2B91F stay glued to their neighbours.
     */
    static boolean isChinese(int cp) {
        return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF)
                || (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF)
                || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
    }
}
