package dev.edgepack.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/** The manifest's "tokenizer" block: the facts the Java WordPiece needs to reproduce Hugging Face's. */
public final class TokenizerSpec {
    public final String file;
    public final String vocabFile;
    public final int maxLength;
    public final boolean lowercase;
    /** Resolved: a null strip_accents in the manifest follows lowercase (the BERT rule). */
    public final boolean stripAccents;
    public final boolean handleChineseChars;
    public final boolean cleanText;
    public final String unkToken;
    public final String continuingSubwordPrefix;
    public final int maxInputCharsPerWord;
    public final int clsId;
    public final int sepId;
    public final int padId;
    public final int unkId;
    public final int vocabSize;
    /** Tokens matched verbatim in the raw text before normalisation, e.g. "[MASK]". */
    public final List<AddedToken> addedTokens;

    public static final class AddedToken {
        public final String content;
        public final int id;

        public AddedToken(String content, int id) {
            this.content = content;
            this.id = id;
        }
    }

    TokenizerSpec(Map<String, Object> t) throws BundleException {
        String type = t.get("type") instanceof String ? (String) t.get("type") : "";
        if (!"WordPiece".equals(type)) throw unsupported("model type", type);
        // Older manifests lack these three facts; they were always BERT's, so absent means supported.
        expectOneOf(t.get("normalizer"), "normalizer", "BertNormalizer");
        expectOneOf(t.get("pre_tokenizer"), "pre_tokenizer", "BertPreTokenizer");
        expectOneOf(t.get("post_processor"), "post_processor", "TemplateProcessing", "BertProcessing");
        file = Manifest.checkPath(Json.str(t.get("file"), "tokenizer.file"));
        vocabFile = Manifest.checkPath(Json.str(t.get("vocab"), "tokenizer.vocab"));
        maxLength = (int) Json.integer(t.get("max_length"), "tokenizer.max_length");
        if (maxLength < 2) throw new BundleException("tokenizer.max_length " + maxLength + " leaves no room for [CLS] and [SEP]");
        lowercase = Json.bool(t.get("lowercase"), false);
        stripAccents = t.get("strip_accents") == null ? lowercase : Json.bool(t.get("strip_accents"), lowercase);
        handleChineseChars = Json.bool(t.get("handle_chinese_chars"), true);
        cleanText = Json.bool(t.get("clean_text"), true);
        unkToken = t.get("unk_token") instanceof String ? (String) t.get("unk_token") : "[UNK]";
        continuingSubwordPrefix = t.get("continuing_subword_prefix") instanceof String
                ? (String) t.get("continuing_subword_prefix") : "##";
        maxInputCharsPerWord = t.get("max_input_chars_per_word") == null ? 100
                : (int) Json.integer(t.get("max_input_chars_per_word"), "tokenizer.max_input_chars_per_word");
        clsId = requiredId(t, "cls_id");
        sepId = requiredId(t, "sep_id");
        padId = t.get("pad_id") == null ? 0 : (int) Json.integer(t.get("pad_id"), "tokenizer.pad_id");
        unkId = requiredId(t, "unk_id");
        vocabSize = t.get("vocab_size") == null ? -1 : (int) Json.integer(t.get("vocab_size"), "tokenizer.vocab_size");
        addedTokens = Collections.unmodifiableList(readAddedTokens(t.get("added_tokens")));
    }

    private static int requiredId(Map<String, Object> t, String key) throws BundleException {
        if (t.get(key) == null) throw new BundleException("tokenizer." + key + " is missing: the vocabulary has no such token");
        return (int) Json.integer(t.get(key), "tokenizer." + key);
    }

    private static List<AddedToken> readAddedTokens(Object raw) throws BundleException {
        List<AddedToken> out = new ArrayList<>();
        if (raw == null) return out;
        for (Object o : Json.arr(raw, "tokenizer.added_tokens")) {
            Map<String, Object> a = Json.obj(o, "tokenizer.added_tokens[]");
            String content = Json.str(a.get("content"), "added_tokens[].content");
            // Hugging Face can strip spaces around, or normalise before matching, an added token; BERT's
            // special tokens do neither. Refuse rather than tokenise differently from the build.
            for (String flag : new String[] {"normalized", "lstrip", "rstrip", "single_word"}) {
                if (Json.bool(a.get(flag), false)) throw unsupported("added token " + content + " with " + flag, "true");
            }
            out.add(new AddedToken(content, (int) Json.integer(a.get("id"), "added_tokens[].id")));
        }
        return out;
    }

    private static void expectOneOf(Object value, String what, String... allowed) throws BundleException {
        if (value == null) return;
        for (String a : allowed) if (a.equals(value)) return;
        throw unsupported(what, String.valueOf(value));
    }

    private static BundleException unsupported(String what, String value) {
        return new BundleException("tokenizer " + what + " '" + value + "' is not supported by the Java WordPiece tokenizer");
    }
}
