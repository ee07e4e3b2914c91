"""The int4 grid of the word-embedding table (`[quantize] embedding_bits = 4`), one for both formats and for training.

Symmetric, one scale per block of `block` values along the embedding width: scale = the block's largest |value| / 7,
rounded to bfloat16; values round(x / that scale), in -7..7. This is what ai-edge-quantizer writes for LiteRT's
blockwise EMBEDDING_LOOKUP (measured: its block scales are max / 7 rounded to bfloat16). onnxruntime's quantiser uses
another grid (the signed extreme / -8, values -8..7, float32 scales), so quantize.py rewrites the ONNX table onto this
one: both files hold the same table.

Why one grid: a student whose lookup is frozen (`train_embeddings = false`, the classifier path) is distilled with its
table already on the grid (distil.py), so the fp32 student the parity gates compare with holds the table the files
ship, and the int4 lookup costs those gates nothing. It had cost them the most: in a classifier build that missed the
TFLite int8-vs-fp32 agreement gate (0.9648 < 0.98), keeping the lookup in float would have removed 59% of the
fallback probe's output error, more than any other layer. On a random 200 x 96 table (blocks of 32), each format gives
a table already on this grid back exactly, while re-quantising the other format's grid costs as much as quantising
the float table (mean error 0.0040 against 0.0041).
"""

from __future__ import annotations

import numpy as np

LEVELS = 7  # values -7..7: the largest |value| of a block maps to 7, so re-quantising finds the same scale


def blocks(table: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """(int8 values in -7..7, shaped like `table`; float32 scales, rows x width / block)."""
    rows, width = table.shape
    b = np.asarray(table, dtype=np.float32).reshape(rows, width // block, block)
    scales = _bfloat16((np.abs(b).max(-1) / LEVELS).astype(np.float32))
    safe = np.where(scales > 0, scales, 1.0).astype(np.float32)  # an all-zero block stays zero
    q = np.clip(np.round(b / safe[..., None]), -LEVELS, LEVELS).astype(np.int8)  # with the scale as stored
    return q.reshape(rows, width), scales


def _bfloat16(x: np.ndarray) -> np.ndarray:
    """float32 values rounded (to nearest, ties to even) to bfloat16's 8 mantissa bits, as float32."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)


def dequantize(q: np.ndarray, scales: np.ndarray, block: int) -> np.ndarray:
    rows, width = q.shape
    return (q.reshape(rows, width // block, block).astype(np.float32) * scales[..., None]).reshape(rows, width)


def snap(table: np.ndarray, block: int) -> np.ndarray:
    """`table` on the grid: what the shipped files will hold, as float32."""
    return dequantize(*blocks(table, block), block)


def pack(q: np.ndarray) -> bytes:
    """ONNX INT4 storage: two values a byte, the first in the low four bits, two's complement."""
    flat = q.reshape(-1).astype(np.int16) & 0xF
    if flat.size % 2:
        flat = np.append(flat, 0)
    return (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8).tobytes()
