"""The student shape that keeps the most fidelity under a size or latency budget (`--max-mb`,
`--max-latency-ms`, issue #11).

Candidates are (teacher layers kept, attention heads kept, FFN neurons kept, word-embedding rank, and, where
the profile allows a pruned vocabulary, vocabulary rows kept). Each
one's int8 file size is estimated from its parameter counts (below); among those that fit, each is built
untrained (the best measured layer subset of its depth, heads and neurons pruned by Taylor importance,
the embedding factorised by SVD) and scored by fidelity to the teacher on held-in text. A larger rank
beats a smaller one at the same depth and width, so only the largest rank that fits each (depth, width)
is scored. Untrained scores over-rate a larger rank against pruned heads and neurons, so the best few are
then distilled briefly and scored again (student/distil.py `_probe_training`); the best of those is built.

With a latency budget each candidate's latency is measured, not estimated: the untrained student is
exported to ONNX, quantised as the profile says, and timed in onnxruntime (batch 1, the profile's thread
count, an input of the smallest bucket's length) on the build machine, beside the teacher timed the same
way. A deeper student of the same width is never faster, so a binary search over depths finds, for each
width, the deepest one within the budget: a handful of exports rather than the whole grid.

Vocabulary is a dimension only where the profile prunes it (`[student] vocab_prune = true`, for domain
bundles): the default keeps the teacher's tokenizer. Then the teacher's whole vocabulary and VOCAB_KEEPS of
it (each planned from the distillation text, student/vocab.py) are tried, each with the largest rank that
fits: fewer rows buy a larger rank or another layer. A pruned candidate is scored in its own token ids, so
held-out words that split differently count against it. The vocabulary changes only the lookup table, whose
cost does not grow with its rows, so a latency budget times each depth and width once for every vocabulary.

The size estimate is of the largest model file, as the size gate measures it; it is checked against the
real file after the build (report: "estimated vs measured"), and the gate still applies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

# Factorised ranks tried, largest first; 0 (the full table) is tried before them.
RANKS = (256, 192, 160, 128, 112, 96, 80, 64, 48, 32)
# int8 weights carry a scale per output channel, 4-bit blocks a scale per 32 values, and the files their
# own structure. Checked on MiniLM: the teacher in int8 is estimated at 22.97 MB (ONNX file 23.0 MB), the
# default student (3 layers, rank 96, int4 table) at 7.47 MB for one signature (ONNX 7.44 MB) and 7.93 MB
# for four (TFLite 7.87 MB), the 2-layer one at 5.97 MB for four (TFLite 5.85 MB); the size gate still
# checks the real files, against --max-mb too.
SIZE_MARGIN = 1.0
FIXED_OVERHEAD_BYTES = 60_000
# What the files add per layer beyond its tensors (node and tensor entries): a tiny 3-layer test model's
# int8 ONNX is 0.134 MB where the tensors above come to 0.11 MB.
GRAPH_BYTES_PER_LAYER = 8_000
# A .tflite repeats each signature's graph and quantisation parameters; only the weights are stored once.
# Measured on MiniLM: a fourth signature added 0.19 MB to the 3-layer default and 0.13 MB to 2 layers,
# about 18 bytes per quantised output channel; 15 per channel and signature, with the graph bytes above,
# puts the default's estimate at 7.93 MB against its 7.87 MB file (ONNX 7.44 MB).
TFLITE_SIGNATURE_BYTES_PER_CHANNEL = 15
# Widths tried (shares of attention heads and of FFN neurons kept, every layer alike). Pruning makes
# every layer cheaper, which only a latency budget needs: on MiniLM, 3-layer students pruned to 8 heads /
# FFN 768 or 6 heads / FFN 512 reached 94.3% / 93.0% of the teacher's STS-B after training, against
# 97.6-97.9% at full width (bench/exploration Q4), and untrained they score lower still.
HEAD_KEEPS = (1.0, 0.75, 0.5)
# Shares of the teacher's vocabulary tried where the profile prunes it. On MiniLM's 30.5k wordpieces, all 6
# layers, untrained, planned from the built-in corpus: 16k rows kept 99.0% of the teacher's STS-B, 12k 98.2%,
# 8k 97.2% (issue #11); these are ~15k, ~12k and ~7.6k rows.
VOCAB_KEEPS = (0.5, 0.4, 0.25)
FFN_KEEPS = (1.0, 0.5, 0.25)


@dataclass(frozen=True)
class Shape:
    layers: int
    rank: int  # 0 = the full embedding table
    estimated_mb: float
    fits: bool  # within every budget given (size estimate, measured latency)
    subset: tuple[int, ...] = ()
    score: float | None = None  # untrained fidelity on held-in text; None = not measured
    heads_keep: float = 1.0
    ffn_keep: float = 1.0
    latency_ms: float | None = None  # measured p50 (latency budgets only); None = not measured
    trained_score: float | None = None  # the same score after a short distillation (the best few only)
    vocab: int = 0  # vocabulary rows kept (a pruned vocabulary); 0 = the teacher's whole vocabulary

    @property
    def width(self) -> tuple[float, float]:
        return (self.heads_keep, self.ffn_keep)

    def as_dict(self) -> dict:
        return {**asdict(self), "subset": list(self.subset)}


@dataclass(frozen=True)
class Dimensions:
    """What the size depends on, read from the teacher's config."""

    vocab: int
    hidden: int
    ffn: int
    heads_keep: float
    ffn_keep: float
    positions: int
    token_types: int
    labels: int  # 0 for an embedding model


def estimate_mb(d: Dimensions, layers: int, rank: int, embedding_bits: int = 8, signatures: int = 1) -> float:
    """The largest model file's size in MB: int8 matrices (per-channel scales), the word table at
    `embedding_bits`, and with `signatures` > 1 a .tflite that repeats each signature's quantisation
    parameters. The size gate still checks the real files."""
    h = d.hidden
    f = max(1, round(d.ffn * d.ffn_keep))
    attn = max(1, round(h * d.heads_keep))  # pruned heads shrink q/k/v outputs and o's inputs
    weights = 3 * h * attn + attn * h + 2 * h * f
    biases_and_norms = 3 * attn + h + f + h + 4 * h
    channels = 3 * attn + h + f + h  # per-channel scales
    per_layer = (weights + 4 * biases_and_norms + 4 * channels + GRAPH_BYTES_PER_LAYER
                 + (signatures - 1) * TFLITE_SIGNATURE_BYTES_PER_CHANNEL * channels)
    rows = d.vocab
    width = rank or h
    table = rows * width * embedding_bits / 8 + (rows * width / 32 * 4 if embedding_bits < 8 else rows * 4)
    project = (rank * h + 4 * h) if rank else 0
    # position and type tables in 8 bits, as the ONNX file stores them (counted in float, MiniLM's estimate
    # was 0.3 MB over that file), and the embedding norm in float
    fixed = d.positions * h + d.token_types * h + 4 * 2 * h
    head = (h * h + 4 * h + h * d.labels + 4 * d.labels) if d.labels else 0
    total = layers * per_layer + table + project + fixed + head + FIXED_OVERHEAD_BYTES
    return round(total * SIZE_MARGIN / 1e6, 3)


def budget_flags(max_mb=None, max_latency_ms=None, min_speedup=None) -> str:
    """The search's budgets as the command line gives them (`--max-mb 8 --min-speedup 3`), for messages
    and the report."""
    given = (("--max-mb", max_mb), ("--max-latency-ms", max_latency_ms), ("--min-speedup", min_speedup))
    return " ".join(f"{flag} {value:g}" for flag, value in given if value)


def widths(d: Dimensions, prune: bool) -> list[tuple[float, float]]:
    """(heads kept, FFN kept) pairs to try: the profile's own, and with `prune` the HEAD_KEEPS x FFN_KEEPS grid."""
    grid = [(h, f) for h in HEAD_KEEPS for f in FFN_KEEPS] if prune else []
    own = (d.heads_keep, d.ffn_keep)
    return [own] + [w for w in grid if w != own]


def vocab_sizes(teacher_rows: int, pruned_rows: list[int]) -> list[int]:
    """The vocabularies to try, as Shape.vocab values: the teacher's (0) first, then each pruned plan's
    row count (`pruned_rows`, from VOCAB_KEEPS and the profile's `vocab_size`) that is smaller, once each."""
    out = [0]
    for rows in sorted(set(pruned_rows), reverse=True):
        if 0 < rows < teacher_rows:
            out.append(rows)
    return out


def candidates(d: Dimensions, teacher_layers: int, max_mb: float, embedding_bits: int = 8, block: int = 32,
               widths_tried=None, ranks=None, signatures: int = 1, vocabs=(0,)) -> list[Shape]:
    """Every depth (and width, and vocabulary) with the largest rank that fits `max_mb` (or the smallest
    rank, marked as not fitting). Below 8 bits the table is stored in blocks along its width, so a rank
    must be a multiple of `block`. `ranks` restricts the ranks tried (a latency budget alone keeps the
    profile's). `vocabs` are Shape.vocab values: 0 is the teacher's `d.vocab` rows."""
    ranks = [r for r in (ranks if ranks is not None else (0, *RANKS))
             if r < d.hidden and (embedding_bits == 8 or r % block == 0)]
    out = []
    for heads_keep, ffn_keep in widths_tried or [(d.heads_keep, d.ffn_keep)]:
        for layers in range(teacher_layers, 0, -1):
            for rows in vocabs:
                dw = replace(d, heads_keep=heads_keep, ffn_keep=ffn_keep, vocab=rows or d.vocab)
                tried = [Shape(layers, r, estimate_mb(dw, layers, r, embedding_bits, signatures), False, heads_keep=heads_keep,
                               ffn_keep=ffn_keep, vocab=rows) for r in ranks]
                fitting = [s for s in tried if s.estimated_mb <= max_mb]
                out.append(replace(fitting[0], fits=True) if fitting else tried[-1])
    return out


def deepest_within(shapes: list[Shape], latency_ms, budget_ms: float) -> list[Shape]:
    """For each width, a binary search over the depths (that fit the size budget) for the deepest one
    whose measured latency, `latency_ms(shape)`, is within `budget_ms`. Depths above it are marked not
    fitting; those measured carry their latency. A deeper student of one width is never faster, so
    only about log2(depths) + 1 shapes per width are exported and timed. Shapes that differ only in
    their vocabulary (and so in the rank that fits) share one timing per depth: the first of them is
    timed, and a lookup's cost does not grow with its rows."""
    out = {id(s): s for s in shapes}
    by_width: dict[tuple[float, float], dict[int, list[Shape]]] = {}
    for s in shapes:
        if s.fits:
            by_width.setdefault(s.width, {}).setdefault(s.layers, []).append(s)
    for depths in by_width.values():
        group = [depths[d] for d in sorted(depths)]  # per depth, the shapes that share its timing
        lo, hi = 0, len(group) - 1  # the answer is in group[:lo] ... group[hi]; -1 when none fits
        best = -1
        while lo <= hi:
            mid = (lo + hi) // 2
            ms = float(latency_ms(group[mid][0]))
            for s in group[mid]:
                out[id(s)] = replace(s, latency_ms=round(ms, 3), fits=ms <= budget_ms)
            if ms <= budget_ms:
                best, lo = mid, mid + 1
            else:
                hi = mid - 1
        for same_depth in group[best + 1 :]:
            for s in same_depth:
                if out[id(s)].fits:  # deeper than one measured over the budget: slower still
                    out[id(s)] = replace(out[id(s)], fits=False)
    return [out[id(s)] for s in shapes]


def pareto(shapes: list[Shape], by_latency: bool = False) -> list[Shape]:
    """The measured shapes no other is both cheaper than and better than, cheapest first; cost is the
    estimated size, or with `by_latency` the measured latency (shapes not timed are left out)."""
    def cost(s: Shape) -> float:
        return s.latency_ms if by_latency else s.estimated_mb

    measured = sorted((s for s in shapes if s.score is not None and cost(s) is not None), key=lambda s: (cost(s), -s.score))
    front, best = [], float("-inf")
    for s in measured:
        if s.score > best:
            front.append(s)
            best = s.score
    return front


LATENCY_REPS = 40  # timed calls per candidate (after measure.latency's warm-up calls); the p50 is kept


def onnx_latency_ms(head, task: str, spec, seq: int, threads: int = 1, reps: int = LATENCY_REPS) -> float:
    """p50 ms of one batch-1 call of `head` (a modeling.wrap head) on a `seq`-token input, exported to
    ONNX and quantised by `spec` (the profile's [quantize]) exactly as a build does, in onnxruntime.
    ONNX stands in for every format: it takes minutes less to convert than TFLite or a .pte, and the
    search only compares candidates with each other and with the teacher on this machine. Static int8
    needs calibration text, so it is timed as dynamic int8 (the same int8 kernels)."""
    import tempfile
    from pathlib import Path

    import numpy as np

    from ..export import export_onnx
    from ..measure.latency import summary, time_calls
    from ..quant.quantize import quantize_file
    from ..runtime.edgepack_runtime import _OnnxBackend  # the session a bundle's runtime opens

    if spec.mode == "static-int8":
        spec = replace(spec, mode="dynamic-int8", full_integer=False)
    with tempfile.TemporaryDirectory() as tmp:
        fp32, quantised = Path(tmp) / "fp32.onnx", Path(tmp) / "model.onnx"
        export_onnx(head, fp32, task)
        quantize_file(fp32, quantised, "onnx", spec)
        backend = _OnnxBackend(quantised, {}, threads)
    rows = int(getattr(head.model.config, "vocab_size", 0) or 2)
    ids = (np.arange(seq, dtype=np.int64) % (rows - 1) + 1)[None, :]  # which ids does not change the cost
    mask = np.ones_like(ids)
    return float(summary(time_calls(lambda: backend.run(ids, mask), reps))["p50_ms"])
