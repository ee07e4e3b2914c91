package dev.edgepack.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * The manifest's "tokenizer" block: the facts the Java tokenizers (WordPiece, byte-level BPE, Unigram) need
 * to reproduce Hugging Face's. A pipeline step they do not implement is refused here, by name.
 */
public final class TokenizerSpec {
    /** WordPiece, BPE or Unigram. */
    public final String type;
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
    // BPE and Unigram (issue #13): the normaliser (none or NFKC) and the pre-tokenizer's settings.
    public final boolean nfkc;
    public final boolean addPrefixSpace;
    public final boolean ignoreMerges;
    public final String metaspaceReplacement;
    public final String metaspacePrependScheme;
    public final boolean metaspaceSplit;

    public static final class AddedToken {
        public final String content;
        public final int id;
        /** The token also takes the whitespace before (lstrip) or after (rstrip) it: RoBERTa's and XLM-R's "<mask>". */
        public final boolean lstrip;
        public final boolean rstrip;

        public AddedToken(String content, int id) {
            this(content, id, false, false);
        }

        public AddedToken(String content, int id, boolean lstrip, boolean rstrip) {
            this.content = content;
            this.id = id;
            this.lstrip = lstrip;
            this.rstrip = rstrip;
        }
    }

    TokenizerSpec(Map<String, Object> t) throws BundleException {
        type = t.get("type") instanceof String ? (String) t.get("type") : "";
        boolean nfkcSeen = false;
        boolean prefixSpace = false;
        String replacement = "\u2581";
        String prepend = "always";
        boolean split = true;
        if ("WordPiece".equals(type)) {
            // Older manifests lack these three facts; they were always BERT's, so absent means supported.
            expectOneOf(t.get("normalizer"), "normalizer", "BertNormalizer");
            expectOneOf(t.get("pre_tokenizer"), "pre_tokenizer", "BertPreTokenizer");
            expectOneOf(t.get("post_processor"), "post_processor", "TemplateProcessing", "BertProcessing", "RobertaProcessing");
        } else if ("BPE".equals(type) || "Unigram".equals(type)) {
            for (Object n : t.get("normalizers") == null ? new ArrayList<Object>() : Json.arr(t.get("normalizers"), "tokenizer.normalizers")) {
                if (!"NFKC".equals(n)) throw unsupported("normalizer", String.valueOf(n));
                nfkcSeen = true;
            }
            List<Object> pre = t.get("pre_tokenizers") == null ? new ArrayList<Object>() : Json.arr(t.get("pre_tokenizers"), "tokenizer.pre_tokenizers");
            String wanted = "BPE".equals(type) ? "ByteLevel" : "Metaspace";
            if (pre.size() != 1) throw unsupported("pre_tokenizer", String.valueOf(t.get("pre_tokenizer")));
            Map<String, Object> p = Json.obj(pre.get(0), "tokenizer.pre_tokenizers[]");
            if (!wanted.equals(p.get("type"))) throw unsupported("pre_tokenizer", String.valueOf(p.get("type")));
            if ("BPE".equals(type)) {
                if (!Json.bool(p.get("use_regex"), true)) throw unsupported("ByteLevel use_regex", "false");
                prefixSpace = Json.bool(p.get("add_prefix_space"), false);
                if (Json.bool(t.get("byte_fallback"), false)) throw unsupported("BPE byte_fallback", "true");
                if (t.get("dropout") != null) throw unsupported("BPE dropout", String.valueOf(t.get("dropout")));
                for (String k : new String[] {"end_of_word_suffix", "bpe_continuing_subword_prefix"}) {
                    Object v = t.get(k);
                    if (v != null && !"".equals(v)) throw unsupported("BPE " + k, String.valueOf(v));
                }
            } else {
                if (Json.bool(t.get("byte_fallback"), false)) throw unsupported("Unigram byte_fallback", "true");
                replacement = Json.str(p.get("replacement"), "Metaspace replacement");
                prepend = p.get("prepend_scheme") instanceof String ? (String) p.get("prepend_scheme")
                        : (Json.bool(p.get("add_prefix_space"), true) ? "always" : "never");
                if (!"always".equals(prepend) && !"first".equals(prepend) && !"never".equals(prepend)) {
                    throw unsupported("Metaspace prepend_scheme", prepend);
                }
                split = Json.bool(p.get("split"), true);
            }
            expectOneOf(t.get("post_processor"), "post_processor", "TemplateProcessing", "RobertaProcessing");
        } else {
            throw unsupported("model type", type);
        }
        nfkc = nfkcSeen;
        addPrefixSpace = prefixSpace;
        ignoreMerges = Json.bool(t.get("ignore_merges"), false);
        metaspaceReplacement = replacement;
        metaspacePrependScheme = prepend;
        metaspaceSplit = split;
        file = Manifest.checkPath(Json.str(t.get("file"), "tokenizer.file"));
        // vocab.txt is WordPiece's; BPE and Unigram read tokenizer.json (a Unigram bundle has no vocab.txt).
        vocabFile = t.get("vocab") == null && !"WordPiece".equals(type) ? null : Manifest.checkPath(Json.str(t.get("vocab"), "tokenizer.vocab"));
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
        // A byte-level BPE vocabulary covers every byte and has no unknown token.
        unkId = "BPE".equals(type) && t.get("unk_id") == null ? -1 : requiredId(t, "unk_id");
        vocabSize = t.get("vocab_size") == null ? -1 : (int) Json.integer(t.get("vocab_size"), "tokenizer.vocab_size");
        addedTokens = Collections.unmodifiableList(readAddedTokens(t.get("added_tokens")));
    }

    private static int requiredId(Map<String, Object> t, String key) throws BundleException {
        if (t.get(key) == null) throw new BundleException("tokenizer." + key + " is missing: the vocabulary has no such token");
        return (int) Json.integer(t.get(key), "tokenizer." + key);
    }

    private List<AddedToken> readAddedTokens(Object raw) throws BundleException {
        List<AddedToken> out = new ArrayList<>();
        if (raw == null) return out;
        for (Object o : Json.arr(raw, "tokenizer.added_tokens")) {
            Map<String, Object> a = Json.obj(o, "tokenizer.added_tokens[]");
            String content = Json.str(a.get("content"), "added_tokens[].content");
            // Hugging Face can also normalise the text before matching an added token, or match it only as a
            // whole word; no special token of the supported families does. Refuse rather than tokenise
            // differently from the build. (lstrip/rstrip are honoured: AddedTokens.)
            for (String flag : new String[] {"normalized", "single_word"}) {
                if (Json.bool(a.get(flag), false)) throw unsupported("added token " + content + " with " + flag, "true");
            }
            out.add(new AddedToken(content, (int) Json.integer(a.get("id"), "added_tokens[].id"),
                    Json.bool(a.get("lstrip"), false), Json.bool(a.get("rstrip"), false)));
        }
        return out;
    }

    private void expectOneOf(Object value, String what, String... allowed) throws BundleException {
        if (value == null) return;
        for (String a : allowed) if (a.equals(value)) return;
        throw unsupported(what, String.valueOf(value));
    }

    private BundleException unsupported(String what, String value) {
        String which = type == null || type.isEmpty() ? "" : " " + type;
        return new BundleException("tokenizer " + what + " '" + value + "' is not supported by the Java" + which + " tokenizer");
    }

    /** The BPE/Unigram normaliser: NFKC or nothing (WordPiece has its own, BERT's). */
    String normalize(String text) {
        return nfkc ? java.text.Normalizer.normalize(text, java.text.Normalizer.Form.NFKC) : text;
    }
}
