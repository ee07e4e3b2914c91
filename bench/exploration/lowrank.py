"""Low-rank (SVD-initialised) word embedding and fake-quant helpers."""
import torch
import torch.nn as nn


class FactorizedEmbedding(nn.Module):
    """E ≈ A·B with A: (V×r) lookup table, B: (r×d) linear map. Initialised by truncated SVD of E.
    Drop-in replacement for nn.Embedding in BertEmbeddings.word_embeddings."""

    def __init__(self, weight: torch.Tensor, rank: int, padding_idx=None):
        super().__init__()
        U, S, Vh = torch.linalg.svd(weight.float(), full_matrices=False)
        s = S[:rank].sqrt()
        self.A = nn.Embedding(weight.shape[0], rank, padding_idx=padding_idx)
        self.A.weight.data.copy_(U[:, :rank] * s)
        self.B = nn.Parameter((s[:, None] * Vh[:rank]).contiguous())  # r × d
        self.padding_idx = padding_idx
        self.embedding_dim = weight.shape[1]
        self.num_embeddings = weight.shape[0]

    @property
    def weight(self):  # full reconstruction (for export / inspection)
        return self.A.weight @ self.B

    def forward(self, ids):
        return self.A(ids) @ self.B


def factorize_embeddings(model, rank):
    emb = model.embeddings.word_embeddings
    model.embeddings.word_embeddings = FactorizedEmbedding(emb.weight.data, rank, emb.padding_idx)
    return model


def fq_int8_rows(w):
    """Symmetric int8, one scale per row."""
    s = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127
    return (w / s).round().clamp(-127, 127) * s


def fq_int4_block(w, block=32):
    """Symmetric int4 blockwise along the last dim (block of `block` values share one fp scale)."""
    V, d = w.shape
    pad = (-d) % block
    x = torch.nn.functional.pad(w, (0, pad)).view(V, -1, block)
    s = x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-12) / 7
    q = (x / s).round().clamp(-8, 7) * s
    return q.view(V, -1)[:, :d]


def fq_int4_block_asym(w, block=32):
    """Asymmetric (min/max, zero point) int4 blockwise, like onnxruntime's GatherBlockQuantized with zero points."""
    V, d = w.shape
    pad = (-d) % block
    x = torch.nn.functional.pad(w, (0, pad)).view(V, -1, block)
    lo, hi = x.amin(-1, keepdim=True), x.amax(-1, keepdim=True)
    s = ((hi - lo) / 15).clamp(min=1e-12)
    z = (-lo / s).round()
    q = ((x / s).round() + z).clamp(0, 15)
    return ((q - z) * s).view(V, -1)[:, :d]
