"""The student shape that keeps the most fidelity under a size budget (`--max-mb`, issue #11).

Candidates are (teacher layers kept, word-embedding rank). Each one's int8 file size is estimated
from its parameter counts (below); among those that fit, each is built untrained (the best measured
layer subset of its depth, the embedding factorised by SVD) and scored by fidelity to the teacher on
held-in text. The best one is distilled. A deeper student always beats a shallower one at the same
rank, and a larger rank beats a smaller one at the same depth, so only the largest rank that fits
each depth is scored: a handful of measurements rather than the whole grid.

The estimate is of the largest model file, as the size gate measures it; it is checked against the
real file after the build (report: "estimated vs measured"), and the gate still applies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# Factorised ranks tried, largest first; 0 (the full table) is tried before them.
RANKS = (256, 192, 160, 128, 112, 96, 80, 64, 48, 32)
# int8 weights carry a scale per output channel, 4-bit blocks a scale per 32 values, and the files their
# own structure. Checked on MiniLM: the teacher in int8 is estimated at 23.1 MB (ONNX file 23.0 MB), the
# default student (3 layers, rank 128, int4 table) at 8.36 MB (TFLite 8.3 MB, ONNX 8.1 MB); the size gate
# still checks the real files.
SIZE_MARGIN = 1.0
FIXED_OVERHEAD_BYTES = 60_000


@dataclass(frozen=True)
class Shape:
    layers: int
    rank: int  # 0 = the full embedding table
    estimated_mb: float
    fits: bool
    subset: tuple[int, ...] = ()
    score: float | None = None  # untrained fidelity on held-in text; None = not measured

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


def estimate_mb(d: Dimensions, layers: int, rank: int, embedding_bits: int = 8) -> float:
    h = d.hidden
    f = max(1, round(d.ffn * d.ffn_keep))
    attn = max(1, round(h * d.heads_keep))  # pruned heads shrink q/k/v outputs and o's inputs
    weights = 3 * h * attn + attn * h + 2 * h * f
    biases_and_norms = 3 * attn + h + f + h + 4 * h
    channels = 3 * attn + h + f + h  # per-channel scales
    per_layer = weights + 4 * biases_and_norms + 4 * channels
    rows = d.vocab
    width = rank or h
    table = rows * width * embedding_bits / 8 + (rows * width / 32 * 4 if embedding_bits < 8 else rows * 4)
    project = (rank * h + 4 * h) if rank else 0
    fixed = 4 * (d.positions * h + d.token_types * h + 2 * h)  # position/type tables and the embedding norm
    head = (h * h + 4 * h + h * d.labels + 4 * d.labels) if d.labels else 0
    total = layers * per_layer + table + project + fixed + head + FIXED_OVERHEAD_BYTES
    return round(total * SIZE_MARGIN / 1e6, 3)


def candidates(d: Dimensions, teacher_layers: int, max_mb: float, embedding_bits: int = 8, block: int = 32) -> list[Shape]:
    """Every depth with the largest rank that fits `max_mb` (or the smallest rank, marked as not fitting).
    Below 8 bits the table is stored in blocks along its width, so a rank must be a multiple of `block`."""
    ranks = [r for r in (0, *RANKS) if r < d.hidden and (embedding_bits == 8 or r % block == 0)]
    out = []
    for layers in range(teacher_layers, 0, -1):
        tried = [Shape(layers, r, estimate_mb(d, layers, r, embedding_bits), False) for r in ranks]
        fitting = [s for s in tried if s.estimated_mb <= max_mb]
        out.append(Shape(fitting[0].layers, fitting[0].rank, fitting[0].estimated_mb, True) if fitting else tried[-1])
    return out


def pareto(shapes: list[Shape]) -> list[Shape]:
    """The measured shapes no other is both smaller than and better than, smallest first."""
    measured = sorted((s for s in shapes if s.score is not None), key=lambda s: (s.estimated_mb, -s.score))
    front, best = [], float("-inf")
    for s in measured:
        if s.score > best:
            front.append(s)
            best = s.score
    return front
