package dev.edgepack.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Added tokens ("[MASK]", "&lt;s&gt;", …) are matched in the raw text before normalisation, leftmost-longest,
 * as Hugging Face does for tokens that are not normalised; the text between them is tokenised on its own.
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
            if (i > start) out.add(text.substring(start, i));
            out.add(hit.id);
            i += hit.content.length();
            start = i;
        }
        if (start < text.length()) out.add(text.substring(start));
        return out;
    }
}
