"""The one way edgepack reads a model's tokenizer, as the `tokenizers.Tokenizer` the runtime uses or as
its JSON spec (what the vocabulary pruning rewrites), and writes the bundle's copy of it.

A model directory without tokenizer.json gets the fast tokenizer Hugging Face builds from vocab.txt.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .teacher import weights_dir


def _from_vocab_txt(model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir, use_fast=True, local_files_only=True, trust_remote_code=False).backend_tokenizer


def load_tokenizer(source: Path | dict):
    """A `tokenizers.Tokenizer` from a model directory or from a tokenizer.json spec."""
    from tokenizers import Tokenizer

    if isinstance(source, dict):
        return Tokenizer.from_str(json.dumps(source))
    src = weights_dir(Path(source))
    if (src / "tokenizer.json").is_file():
        return Tokenizer.from_file(str(src / "tokenizer.json"))
    return _from_vocab_txt(src)


def tokenizer_spec(model_dir: Path) -> dict:
    """The tokenizer.json of a model directory, as written (its bytes end up in a pruned student's copy)."""
    path = weights_dir(Path(model_dir)) / "tokenizer.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return json.loads(load_tokenizer(model_dir).to_str())


def write_tokenizer(src_dir: Path, dst: Path) -> None:
    """The bundle's tokenizer.json, and a vocab.txt written from it so the two can never disagree."""
    src = Path(src_dir) / "tokenizer.json"
    if src.is_file():
        shutil.copyfile(src, dst / "tokenizer.json")
    else:
        load_tokenizer(src_dir).save(str(dst / "tokenizer.json"))
    vocab = json.loads((dst / "tokenizer.json").read_text(encoding="utf-8"))["model"].get("vocab")
    if isinstance(vocab, dict):
        by_id = sorted(vocab.items(), key=lambda kv: kv[1])
        (dst / "vocab.txt").write_text("".join(tok + "\n" for tok, _ in by_id), encoding="utf-8")
