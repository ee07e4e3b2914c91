package dev.edgepack.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Added tokens ("[MASK]", "&lt;s&gt;", …) are matched in the raw text before normalisation, leftmost-longest,
 * as Hugging Face does for tokens that are not normalised; the text between them is tokenised on its own.
 * A token with lstrip/rstrip also takes the whitespace before/after it.
 */
final class AddedTokens {
    private final List<TokenizerSpec.AddedToken> longestFirst;

    AddedTokens(List<TokenizerSpec.AddedToken> tokens) {
        List<TokenizerSpec.AddedToken> added = new ArrayList<>(tokens);
        // Trying longer ones first at each position gives leftmost-longest.
        Collections.sort(added, (a, b) -> Integer.compare(b.content.length(), a.content.length()));
        this.longestFirst = added;
    }

    /** Raw text split into plain-text segments (String) and added-token ids (Integer), in order. */
    List<Object> split(String text) {
        List<Object> out = new ArrayList<>();
        int start = 0;
        int i = 0;
        while (i < text.length()) {
            TokenizerSpec.AddedToken hit = null;
            for (TokenizerSpec.AddedToken t : longestFirst) {
                if (!t.content.isEmpty() && text.startsWith(t.content, i)) { hit = t; break; }
            }
            if (hit == null) { i++; continue; }
            // lstrip/rstrip: the token's span takes the whitespace run before/after it (Rust's
            // space_leftmost_at_end / space_rightmost_at_start; never text an earlier token already took).
            int from = i;
            if (hit.lstrip) {
                while (from > start && WordPieceTokenizer.isWhitespace(text.codePointBefore(from))) from -= Character.charCount(text.codePointBefore(from));
            }
            int to = i + hit.content.length();
            if (hit.rstrip) {
                while (to < text.length() && WordPieceTokenizer.isWhitespace(text.codePointAt(to))) to += Character.charCount(text.codePointAt(to));
            }
            if (from > start) out.add(text.substring(start, from));
            out.add(hit.id);
            i = to;
            start = i;
        }
        if (start < text.length()) out.add(text.substring(start));
        return out;
    }
}
