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
