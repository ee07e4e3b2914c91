"""Tiny seeded models for tests and demos: seconds to build, export and quantise.

`tiny_bert(dir)` writes a sentence-transformers style encoder (mean pooling + normalise);
`tiny_bert(dir, task="text-classification")` a BertForSequenceClassification with labels.
Both use the committed 170-token vocab in edgepack/data/tiny_vocab.txt.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

TINY_SENTENCES = (
    "the movie was really good",
    "the food is very bad",
    "remind me to call home tomorrow",
    "i love this phone",
    "the battery is slow and old",
    "a great book to read today",
    "buy cheap coffee in the city",
    "it was a sad day at work",
    "we play music at night",
    "the train is fast",
    "this app is terrible",
    "hello world",
    "my new car is expensive",
    "they walk home in the rain",
    "she likes tea and sun",
    "you read a small note",
)


def tiny_vocab_path() -> Path:
    return Path(str(resources.files("edgepack.data").joinpath("tiny_vocab.txt")))


def tiny_bert(path, task: str = "sentence-embedding", seed: int = 0, layers: int = 2, hidden: int = 32,
              heads: int = 4, intermediate: int = 64, labels=("negative", "positive")) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocab_path().read_text(encoding="utf-8").splitlines()
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=intermediate, max_position_embeddings=128, type_vocab_size=2,
    )
    if task == "text-classification":
        config.num_labels = len(labels)
        config.id2label = dict(enumerate(labels))
        config.label2id = {v: k for k, v in enumerate(labels)}
        config.architectures = ["BertForSequenceClassification"]
        model = BertForSequenceClassification(config)
    else:
        config.architectures = ["BertModel"]
        model = BertModel(config)
    model.eval().save_pretrained(path, safe_serialization=True)
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True, model_max_length=128)
    tok.save_pretrained(path)
    if task == "sentence-embedding":
        (path / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ]))
        (path / "1_Pooling").mkdir(exist_ok=True)
        (path / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": hidden, "pooling_mode_mean_tokens": True}))
        (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64, "do_lower_case": False}))
    return path


def tiny_target_toml(formats=("onnx", "tflite"), buckets=(16, 32), mode="dynamic-int8", **budget) -> str:
    """A fast profile for tests: short buckets, loose gates unless given."""
    lines = [
        'name = "tiny-test"',
        f"formats = {json.dumps(list(formats))}",
        "[shapes]",
        f"sequence_buckets = {json.dumps(list(buckets))}",
        "[quantize]",
        f'mode = "{mode}"',
        "[budget]",
    ] + [f"{k} = {v}" for k, v in budget.items()]
    return "\n".join(lines) + "\n"


def build_from_toml(tmp_path, name: str, toml: str, model, data, cache_dir) -> Path:
    """Write a profile to `tmp_path/<name>.toml` and build the tiny model with it; returns the bundle dir."""
    import edgepack

    target = Path(tmp_path) / f"{name}.toml"
    target.write_text(toml)
    out = Path(tmp_path) / f"out-{name}"
    edgepack.build(target=str(target), model=str(model), data=(str(data),), out=out, cache_dir=cache_dir)
    return out


# ---- issue #13: the other families and tokenizers, all built in code from the built-in corpus ----

# Special tokens in fairseq's order (RoBERTa, XLM-R, MPNet): <pad> is id 1, the models' padding_idx.
FAIRSEQ_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def corpus_lines() -> list[str]:
    return [x for x in Path(str(resources.files("edgepack.data").joinpath("corpus.txt"))).read_text(encoding="utf-8").splitlines() if x.strip()]


def train_tokenizer(kind: str, vocab_size: int = 1000):
    """A `tokenizers.Tokenizer` trained on the built-in corpus with the library's own trainers:
    "bpe" byte-level BPE as RoBERTa's, "unigram" SentencePiece Unigram (Metaspace) as XLM-R's,
    "wordpiece" BERT's pipeline with fairseq's special tokens (as MPNet's), "sentencepiece" a real
    SentencePiece model converted as Hugging Face converts XLM-R's (Precompiled normaliser)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    specials = list(FAIRSEQ_SPECIALS)
    if kind == "sentencepiece":
        return _sentencepiece_xlmr()
    if kind == "bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    elif kind == "unigram":
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
        tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>", show_progress=False)
    elif kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="<unk>"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    else:
        raise ValueError(f"unknown tokenizer kind {kind!r}")
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    if kind == "bpe":
        tok.post_processor = processors.RobertaProcessing(("</s>", eos), ("<s>", bos), add_prefix_space=False)
    else:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                                           special_tokens=[("<s>", bos), ("</s>", eos)])
    return tok


def _sentencepiece_xlmr():
    """A SentencePiece Unigram model trained on the built-in corpus (the `sentencepiece` package, nmt_nfkc
    rules), converted by transformers' XLM-R converter: the pipeline real XLM-R checkpoints ship
    (Precompiled + Strip + Replace normalisers, Metaspace, <mask> lstrip and normalised)."""
    import io
    import tempfile

    import sentencepiece as spm
    from transformers import XLMRobertaTokenizerFast

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus_lines()), model_writer=buf, vocab_size=1000,
                                   model_type="unigram", character_coverage=1.0, minloglevel=2, num_threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "spm.model").write_bytes(buf.getvalue())
        return XLMRobertaTokenizerFast(vocab_file=str(Path(tmp) / "spm.model")).backend_tokenizer


FAMILY_TOKENIZERS = {"roberta": "bpe", "xlm-roberta": "unigram", "mpnet": "bpe", "bert": "wordpiece", "distilbert": "wordpiece"}


def tiny_model(path, family: str = "roberta", task: str = "sentence-embedding", tokenizer: str | None = None, seed: int = 0,
               layers: int = 2, hidden: int = 32, heads: int = 4, intermediate: int = 64, pooling: str = "mean",
               dense: int = 0, normalize: bool = True, labels=("negative", "positive"), vocab_size: int = 1000,
               max_length: int = 64) -> Path:
    """A tiny seeded model of `family` (roberta, xlm-roberta, mpnet, bert, distilbert) with a tokenizer
    trained in code; a sentence-transformers layout (Pooling `pooling`, an optional Dense of `dense`
    outputs with Tanh, Normalize) for encoders, an *ForSequenceClassification with labels otherwise."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, PreTrainedTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(tokenizer or FAMILY_TOKENIZERS[family], vocab_size)
    torch.manual_seed(seed)
    size = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=intermediate)
    if family == "distilbert":
        size = dict(dim=hidden, n_layers=layers, n_heads=heads, hidden_dim=intermediate)
    config = AutoConfig.for_model(family, vocab_size=tok.get_vocab_size(), **size,
                                  max_position_embeddings=max(max_length, 128) + 2, pad_token_id=tok.token_to_id("<pad>"),
                                  bos_token_id=tok.token_to_id("<s>"), eos_token_id=tok.token_to_id("</s>"))
    if family in ("roberta", "xlm-roberta"):
        config.type_vocab_size = 1
    if task == "text-classification":
        config.num_labels = len(labels)
        config.id2label = dict(enumerate(labels))
        config.label2id = {v: k for k, v in enumerate(labels)}
        model = AutoModelForSequenceClassification.from_config(config)
    else:
        model = AutoModel.from_config(config)
    config.architectures = [type(model).__name__]
    model.eval().save_pretrained(path, safe_serialization=True)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", mask_token="<mask>", cls_token="<s>", sep_token="</s>",
                                   model_max_length=max(max_length, 128))
    fast.save_pretrained(path)
    if task == "sentence-embedding":
        modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
        (path / "1_Pooling").mkdir(exist_ok=True)
        (path / "1_Pooling" / "config.json").write_text(json.dumps({
            "word_embedding_dimension": hidden, "pooling_mode_cls_token": pooling == "cls",
            "pooling_mode_mean_tokens": pooling == "mean", "pooling_mode_max_tokens": pooling == "max"}))
        if dense:
            from safetensors.torch import save_file

            linear = torch.nn.Linear(hidden, dense)
            (path / "2_Dense").mkdir(exist_ok=True)
            (path / "2_Dense" / "config.json").write_text(json.dumps({
                "in_features": hidden, "out_features": dense, "bias": True,
                "activation_function": "torch.nn.modules.activation.Tanh"}))
            save_file({"linear.weight": linear.weight.detach().contiguous(), "linear.bias": linear.bias.detach().contiguous()},
                      str(path / "2_Dense" / "model.safetensors"))
            modules.append({"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
        if normalize:
            modules.append({"idx": len(modules), "name": str(len(modules)), "path": f"{len(modules)}_Normalize",
                            "type": "sentence_transformers.models.Normalize"})
        (path / "modules.json").write_text(json.dumps(modules))
        (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_length, "do_lower_case": False}))
    return path
