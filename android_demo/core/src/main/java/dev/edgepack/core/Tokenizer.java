package dev.edgepack.core;

import java.util.List;

/**
 * Text to the token ids the model was built with, exactly as Hugging Face `tokenizers` gives them for the
 * bundle's tokenizer.json: {@link WordPieceTokenizer} (BERT), {@link ByteLevelBpeTokenizer} (RoBERTa, GPT-2
 * style) and {@link UnigramTokenizer} (SentencePiece Unigram, XLM-R style). {@link #open} picks the one the
 * manifest names.
 */
public interface Tokenizer {
    /** Token ids exactly as the model sees them: cls, pieces…, sep, at most {@link #maxLength()} long. */
    int[] encode(String text);

    int maxLength();

    int padId();

    /**
     * The bundle's tokenizer. WordPiece reads vocab.txt; BPE and Unigram read their merges and scored pieces
     * from tokenizer.json, whose bytes the caller has checked against the manifest.
     */
    static Tokenizer open(TokenizerSpec spec, byte[] vocabTxt, byte[] tokenizerJson, int maxLength) throws BundleException {
        switch (spec.type) {
            case "WordPiece":
                try {
                    return new WordPieceTokenizer(WordPieceTokenizer.readVocab(new java.io.ByteArrayInputStream(vocabTxt)), spec, maxLength);
                } catch (java.io.IOException e) {
                    throw new BundleException("cannot read " + spec.vocabFile, e);
                }
            case "BPE":
                return new ByteLevelBpeTokenizer(spec, model(tokenizerJson), maxLength);
            case "Unigram":
                return new UnigramTokenizer(spec, model(tokenizerJson), maxLength);
            default:
                throw new BundleException("tokenizer model type '" + spec.type + "' is not supported");
        }
    }

    /** The "model" object of tokenizer.json. */
    static java.util.Map<String, Object> model(byte[] tokenizerJson) throws BundleException {
        try {
            Object root = Json.parse(new String(tokenizerJson, java.nio.charset.StandardCharsets.UTF_8));
            return Json.obj(Json.obj(root, "tokenizer.json").get("model"), "tokenizer.json model");
        } catch (RuntimeException e) {
            throw new BundleException("tokenizer.json: " + e.getMessage(), e);
        }
    }

    /** cls + the first maxLength - 2 pieces + sep: Hugging Face truncates the pieces so the specials fit. */
    static int[] frame(List<Integer> pieces, int clsId, int sepId, int maxLength) {
        int keep = Math.min(pieces.size(), maxLength - 2);
        int[] ids = new int[keep + 2];
        ids[0] = clsId;
        for (int i = 0; i < keep; i++) ids[i + 1] = pieces.get(i);
        ids[keep + 1] = sepId;
        return ids;
    }
}
