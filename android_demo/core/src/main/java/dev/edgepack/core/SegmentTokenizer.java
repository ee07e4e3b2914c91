package dev.edgepack.core;

import java.util.ArrayList;
import java.util.List;

/**
 * What the three ports share, as Hugging Face runs every tokenizer.json: added tokens are matched in the raw
 * text first ({@link AddedTokens}), each stretch of text between them goes through the port's own pipeline
 * ({@link #encodeSegment}), and the pieces are framed as cls … sep within {@link #maxLength()}.
 */
abstract class SegmentTokenizer implements Tokenizer {
    protected final TokenizerSpec spec;
    protected final int maxLength;
    private final AddedTokens added;

    SegmentTokenizer(TokenizerSpec spec, int maxLength, String specials) throws BundleException {
        this.spec = spec;
        if (maxLength < 2) throw new BundleException("max_length " + maxLength + " leaves no room for " + specials);
        this.maxLength = maxLength;
        this.added = new AddedTokens(spec.addedTokens);
    }

    /** The manifest's added tokens (WordPiece overrides it: it completes old manifests' lists). */
    protected AddedTokens addedTokens() {
        return added;
    }

    /** Appends the ids of one stretch of text between added tokens; {@code first}: nothing came before it. */
    protected abstract void encodeSegment(String segment, boolean first, List<Integer> out);

    @Override
    public final int maxLength() {
        return maxLength;
    }

    @Override
    public final int padId() {
        return spec.padId;
    }

    /** Token ids exactly as the model sees them: cls, pieces…, sep, at most max_length long. */
    @Override
    public final int[] encode(String text) {
        List<Integer> pieces = new ArrayList<>();
        boolean first = true;
        for (Object segment : addedTokens().split(text)) {
            if (segment instanceof Integer) {
                pieces.add((Integer) segment);
            } else {
                encodeSegment((String) segment, first, pieces);
            }
            first = false;
        }
        return Tokenizer.frame(pieces, spec.clsId, spec.sepId, maxLength);
    }
}
