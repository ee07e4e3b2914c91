"""Low-rank word embeddings: keep the teacher's whole vocabulary at a fraction of its size (issue #11).

The word-embedding table is most of a small student (30,522 x 384 = 11.7M of MiniLM's 22.7M
parameters). Cutting rows changes how text tokenises; factorising the table as
`E ~= A (vocab x rank) . B (rank x hidden)` keeps every token, so the student tokenises exactly as
the teacher does. A and B start from the truncated SVD of E (the best rank-r approximation) and
are trained during distillation.

The factorised module replaces `word_embeddings` inside an ordinary Hugging Face model; its rank
is recorded in the config (`edgepack_embedding_rank`) so `modeling.load_hf_model` can rebuild
the same shape before loading the weights.
"""

from __future__ import annotations

import torch

from ..families import FAMILIES, get_attr, set_attr

CONFIG_KEY = "edgepack_embedding_rank"


class LowRankEmbedding(torch.nn.Module):
    """Embedding(vocab, rank) followed by a bias-free Linear(rank, hidden)."""

    def __init__(self, num_embeddings: int, rank: int, embedding_dim: int, padding_idx: int | None = None):
        super().__init__()
        self.lookup = torch.nn.Embedding(num_embeddings, rank)
        self.project = torch.nn.Linear(rank, embedding_dim, bias=False)
        # Read by HF code that asks the table for its size (resize_token_embeddings, repr).
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.project(self.lookup(input_ids))


class TableSVD:
    """One SVD of a table, truncated to any rank: the shape search factorises many candidates."""

    @torch.no_grad()
    def __init__(self, table: torch.Tensor):
        self.u, self.s, self.vh = torch.linalg.svd(table.float(), full_matrices=False)

    def factors(self, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, B) with A @ B the best rank-`rank` approximation of the table (Eckart-Young). The singular
        values are split evenly (A = U sqrt(S), B = sqrt(S) V^T) so both factors train at a similar scale."""
        root = self.s[:rank].sqrt()
        return self.u[:, :rank] * root, root[:, None] * self.vh[:rank]


def svd_factors(table: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, B) with A @ B the best rank-`rank` approximation of `table` (see TableSVD.factors)."""
    return TableSVD(table).factors(rank)


def factorise_word_embeddings(model, family: str, rank: int, svd: TableSVD | None = None) -> None:
    """Replace the model's word embeddings by their rank-`rank` SVD factors, in place (`svd`: the
    table's SVD, already computed)."""
    path = FAMILIES[family].word_embeddings
    old = get_attr(model.base_model, path)
    if isinstance(old, LowRankEmbedding):
        raise ValueError("the word embeddings are already factorised")
    hidden = old.weight.shape[1]
    if not 0 < rank < hidden:
        raise ValueError(f"embedding rank must be in 1..{hidden - 1}, got {rank}")
    a, b = (svd or TableSVD(old.weight.data)).factors(rank)
    new = _install(model, family, rank)
    new.lookup.weight.data.copy_(a)
    new.project.weight.data.copy_(b.T)
    setattr(model.config, CONFIG_KEY, rank)


def rebuild_for_loading(model, family: str) -> None:
    """Give a model built from a config with `edgepack_embedding_rank` the factorised shape, so that
    its saved weights load strictly (values are overwritten by the load)."""
    if rank_of(model):
        _install(model, family, rank_of(model))


def _install(model, family: str, rank: int) -> LowRankEmbedding:
    """Put a (not yet filled) rank-`rank` module in place of the model's word-embedding table."""
    path = FAMILIES[family].word_embeddings
    old = get_attr(model.base_model, path)
    new = LowRankEmbedding(old.weight.shape[0], rank, old.weight.shape[1], getattr(old, "padding_idx", None))
    set_attr(model.base_model, path, new)
    return new


def rank_of(model) -> int:
    """The factorised rank of a model's word embeddings, 0 when it keeps the full table."""
    return int(getattr(model.config, CONFIG_KEY, 0) or 0)
