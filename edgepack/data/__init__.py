"""Text for distillation, calibration and validation: readers for the user's --data files, and the
built-in text shipped beside this module: corpus.txt (written for the project) and general.txt.gz (a
general-English corpus from public-domain and permissively licensed sources; provenance, licences and
required notices in CORPUS.md, rebuilt by tools/corpus/build_corpus.py) and captions.txt.gz (descriptive
sentences from project-written templates, rebuilt by tools/corpus/build_captions.py). tiny_vocab.txt is the
test models' vocabulary.

A library: the build's data stage, `edgepack check --data` and `edgepack bench --data` read text alike.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import random
from importlib import resources
from pathlib import Path

from ..context import Texts
from ..errors import DataError

TEXT_COLUMNS = ("text", "sentence", "sentence1", "sentence2", "question", "content", "review", "document", "body")
LABEL_COLUMNS = ("label", "labels", "class", "target", "category")
MAX_CHARS = 10_000  # a line longer than this is cut: no sentence needs more, and it bounds memory
MAX_FILE_BYTES = 2 << 30


BUILTIN_VALIDATION_SIZE = 64  # held-out texts of the built-in text (the README's figures use 64)
BUILTIN_SOURCE = ("built-in: corpus.txt (project-written; validation held out from it) "
                  "+ general.txt.gz (general English; licences in edgepack/data/CORPUS.md) "
                  "+ captions.txt.gz (project-written descriptive sentences)")


def builtin_corpus() -> list[str]:
    """Sentences written for this project (no third-party text), shipped as package data."""
    text = resources.files("edgepack.data").joinpath("corpus.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def general_corpus() -> list[str]:
    """The general-English corpus (issue #11): 52,795 de-duplicated lines from WordNet, State of the
    Union addresses, Austen, Moby-Dick, the CIA World Factbook, the Jargon File, the Devil's Dictionary,
    emoji names and pyjokes. Sources, versions, licences and the notices they require: CORPUS.md."""
    return _gzipped_lines("general.txt.gz")


def captions_corpus() -> list[str]:
    """12,000 short descriptive sentences ("A man is slicing an onion in a kitchen.", "There is no dog
    running on the beach.") generated from word lists and templates written for this project by
    tools/corpus/build_captions.py (Apache-2.0, as edgepack). The general corpus has almost no text that
    describes a scene, which is much of what apps embed (issue #11: STS-B dev 97.7% -> 98.4% of the teacher)."""
    return _gzipped_lines("captions.txt.gz")


def _gzipped_lines(name: str) -> list[str]:
    """The non-blank lines of a gzipped UTF-8 text shipped beside this module."""
    raw = resources.files("edgepack.data").joinpath(name).read_bytes()
    return [line.strip() for line in gzip.decompress(raw).decode("utf-8").splitlines() if line.strip()]


def builtin_texts(seed: int = 0, validation_size: int = 0) -> Texts:
    """The default text (no --data): corpus.txt, the general corpus and the captions, with the validation
    slice held out from corpus.txt alone, exactly as before the other two existed (same seed, same texts).

    Why validation comes only from corpus.txt: it is written like what apps embed (queries, reviews,
    commands, chat), while the general corpus is dictionary glosses, speeches and 19th-century prose;
    the profiles' parity gates and the README's figures were set on this slice, so they keep their
    meaning and stay comparable across versions. The general corpus and the captions only widen the
    training text. Training text is all three shuffled together (a prefix, as `--quick` takes, is a random
    sample of the whole); a line equal to an earlier one is dropped, so no validation text is trained on.
    """
    project = builtin_corpus()
    held = split(project, None, seed, validation_size or BUILTIN_VALIDATION_SIZE, "")
    seen = set(project)
    general = []
    for text in general_corpus() + captions_corpus():
        if text not in seen:
            seen.add(text)
            general.append(text)
    train = list(held.train) + general
    random.Random(seed).shuffle(train)
    return Texts(
        train=tuple(train),
        validation=held.validation,
        source=BUILTIN_SOURCE,
        sha256=hashlib.sha256("\n".join(project + general).encode()).hexdigest(),
    )


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    if b"\x00" in raw[:8192]:
        raise DataError(f"{path}: looks like a binary file, not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); re-save it as UTF-8") from None


def _pick(columns: list[str], wanted: str | None, candidates: tuple[str, ...], path: Path, what: str) -> list[str]:
    lower = {c.lower().strip(): c for c in columns}
    if wanted:
        if wanted not in columns and wanted.lower() not in lower:
            raise DataError(f"{path}: no column '{wanted}' (columns: {', '.join(columns)})")
        return [wanted if wanted in columns else lower[wanted.lower()]]
    found = [lower[c] for c in candidates if c in lower]
    if what == "text" and "sentence1" in lower and "sentence2" in lower:
        return [lower["sentence1"], lower["sentence2"]]  # sentence pairs: both sides are text
    return found[:1]


def load_file(path: Path, text_column: str | None = None, label_column: str | None = None):
    """Return (texts, labels or None) from .txt, .csv, .tsv or .jsonl."""
    if not path.is_file():
        raise DataError(f"--data {path}: no such file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise DataError(f"--data {path}: larger than 2 GiB; pass a sample")
    text = _decode(path)
    suffix = path.suffix.lower()
    texts: list[str] = []
    labels: list | None = None
    if suffix in (".csv", ".tsv"):
        delim = "\t" if suffix == ".tsv" else ","
        # csv refuses fields over 128 KiB by default; one huge field is cut at MAX_CHARS like a .txt line.
        csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
        try:
            rows = list(csv.reader(text.splitlines(), delimiter=delim, quoting=csv.QUOTE_NONE if delim == "\t" else csv.QUOTE_MINIMAL))
        except csv.Error as exc:
            raise DataError(f"--data {path}: not a valid {suffix[1:].upper()} file ({exc})") from None
        if not rows:
            raise DataError(f"--data {path}: empty file")
        header, body = rows[0], rows[1:]
        cols = _pick(header, text_column, TEXT_COLUMNS, path, "text")
        if not cols:
            raise DataError(
                f"--data {path}: no text column found (columns: {', '.join(header)}); name it with --text-column"
            )
        lcols = _pick(header, label_column, LABEL_COLUMNS, path, "label") if len(cols) == 1 else []
        idx = [header.index(c) for c in cols]
        lidx = header.index(lcols[0]) if lcols else None
        labels = [] if lidx is not None else None
        for row in body:
            for i in idx:
                if i < len(row):
                    texts.append(row[i])
                    if labels is not None:
                        labels.append(row[lidx] if lidx < len(row) else None)
    elif suffix == ".jsonl":
        labels = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                raise DataError(f"--data {path}: line {n} is not JSON") from None
            if isinstance(obj, str):
                texts.append(obj)
                labels.append(None)
                continue
            if not isinstance(obj, dict):
                raise DataError(f"--data {path}: line {n} is not a JSON object or string")
            cols = _pick(list(obj), text_column, TEXT_COLUMNS, path, "text")
            if not cols:
                raise DataError(f"--data {path}: line {n} has no text field ({', '.join(obj)}); use --text-column")
            lcols = _pick(list(obj), label_column, LABEL_COLUMNS, path, "label")
            for c in cols:
                texts.append(str(obj[c]))
                labels.append(obj[lcols[0]] if lcols else None)
        if all(x is None for x in labels):
            labels = None
    else:
        texts = text.splitlines()
    texts = [t.strip()[:MAX_CHARS] for t in texts]
    return texts, labels


def load_texts(paths, text_column=None, label_column=None, label_names=(), seed: int = 0, validation_size: int = 0) -> Texts:
    all_texts, all_labels, have_labels = [], [], True
    for p in paths:
        texts, labels = load_file(Path(p), text_column, label_column)
        if labels is None:
            have_labels = False
            labels = [None] * len(texts)
        all_texts += texts
        all_labels += labels
    source = ", ".join(str(p) for p in paths)
    seen, texts, labels = set(), [], []
    for t, lab in zip(all_texts, all_labels):
        if t and t not in seen:  # duplicates and empty lines dropped
            seen.add(t)
            texts.append(t)
            labels.append(lab)
    if not texts:
        raise DataError(f"--data {source}: no usable text (empty file or only blank lines)")
    ids = label_ids(labels, label_names) if have_labels else None
    return split(texts, ids, seed, validation_size, source)


def label_ids(labels, label_names) -> list[int] | None:
    """Labels as class indices (names looked up in `label_names`, or integers); None if any is missing."""
    names = list(label_names)
    out = []
    for lab in labels:
        if lab is None or lab == "":
            return None
        s = str(lab).strip()
        if s in names:
            out.append(names.index(s))
        elif s.lstrip("-").isdigit():
            out.append(int(s))
        else:
            return None
    return out


def split(texts, labels, seed: int, validation_size: int, source: str) -> Texts:
    """Hold out a deterministic slice for validation: 10% of the data, at least 8, at most 256."""
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    n_val = validation_size or min(256, max(8, len(texts) // 10))
    n_val = min(n_val, max(1, len(texts) // 2)) if len(texts) > 1 else 1
    val, train = order[:n_val], order[n_val:] or order[:n_val]
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()
    return Texts(
        train=tuple(texts[i] for i in train),
        validation=tuple(texts[i] for i in val),
        train_labels=tuple(labels[i] for i in train) if labels else None,
        validation_labels=tuple(labels[i] for i in val) if labels else None,
        source=source,
        sha256=digest,
    )
