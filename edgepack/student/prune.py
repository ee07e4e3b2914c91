"""Structured pruning: score attention heads and FFN neurons, then physically remove the weakest.

Importance is first-order Taylor (gradient x activation) of the distillation loss, as in Michel et al.
2019 ("Are Sixteen Heads Really Better than One?") for heads and Molchanov et al. 2019 for neurons.

Heads are removed through Hugging Face's own `prune_heads`, which records `config.pruned_heads`, so
`from_pretrained` rebuilds the same shapes; every layer keeps the same number of heads (uniform
budget), which keeps per-layer cost predictable. FFN neurons are removed with the same count in
every layer because BERT's config has a single `intermediate_size`.
"""

from __future__ import annotations

import torch

from ..families import FAMILIES, get_attr, set_attr


def _blocks(model, family: str):
    return get_attr(model.base_model, FAMILIES[family].layers)


def heads_per_layer(model, family: str) -> list[int]:
    fam = FAMILIES[family]
    n = int(getattr(model.config, fam.num_heads_key))
    pruned = getattr(model.config, "pruned_heads", None) or {}
    return [n - len(pruned.get(i, ())) for i in range(len(_blocks(model, family)))]


def importance_scores(model, family: str, batches, loss_fn) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (head_scores [layers, heads], ffn_scores [layers, ffn]) accumulated over `batches`.

    `loss_fn(model, batch, head_mask)` returns the scalar distillation loss. Scoring needs an unpruned
    attention (same head count in every layer) so a [layers, heads] mask applies.
    """
    fam = FAMILIES[family]
    blocks = _blocks(model, family)
    n_heads = heads_per_layer(model, family)
    if len(set(n_heads)) != 1 or n_heads[0] != int(getattr(model.config, fam.num_heads_key)):
        raise ValueError("importance_scores needs a model whose heads have not been pruned yet")
    head_mask = torch.ones(len(blocks), n_heads[0], requires_grad=True)
    head_scores = torch.zeros(len(blocks), n_heads[0])
    ffn_width = get_attr(blocks[0], fam.ffn_out).in_features
    ffn_scores = torch.zeros(len(blocks), ffn_width)
    acts: dict[int, torch.Tensor] = {}

    def keep_activation(i):
        def hook(module, inputs):
            inputs[0].retain_grad()
            acts[i] = inputs[0]

        return hook

    handles = [get_attr(b, fam.ffn_out).register_forward_pre_hook(keep_activation(i)) for i, b in enumerate(blocks)]
    was_training = model.training
    model.eval()  # no dropout: scores must be deterministic
    try:
        for batch in batches:
            model.zero_grad(set_to_none=True)
            if head_mask.grad is not None:
                head_mask.grad = None
            loss = loss_fn(model, batch, head_mask)
            loss.backward()
            head_scores += head_mask.grad.detach().abs()
            for i, a in acts.items():
                # |sum over tokens of activation x gradient| per neuron: the loss change if it were zeroed.
                ffn_scores[i] += (a.detach() * a.grad.detach()).sum(dim=(0, 1)).abs()
            acts.clear()
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    # Normalise per layer (Michel et al.): layers with larger gradients should not take every slot.
    head_scores = head_scores / head_scores.norm(dim=1, keepdim=True).clamp(min=1e-12)
    return head_scores, ffn_scores


def keep_count(total: int, share: float) -> int:
    return max(1, min(total, round(total * share)))


def prune_attention_heads(model, family: str, scores: torch.Tensor, keep: int) -> dict[int, list[int]]:
    """Keep the `keep` highest-scoring heads of every layer; returns the heads removed per layer."""
    n = scores.shape[1]
    if keep >= n:
        return {}
    to_prune = {}
    for layer in range(scores.shape[0]):
        order = torch.argsort(scores[layer], descending=True, stable=True)
        to_prune[layer] = sorted(int(h) for h in order[keep:])
    model.prune_heads(to_prune)
    return to_prune


def _slice_linear(linear: torch.nn.Linear, index: torch.Tensor, dim: int) -> torch.nn.Linear:
    weight = linear.weight.detach().index_select(dim, index).clone()
    bias = linear.bias.detach().clone() if linear.bias is not None else None
    if dim == 0 and bias is not None:
        bias = bias[index].clone()
    new = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    new.weight.data.copy_(weight)
    if bias is not None:
        new.bias.data.copy_(bias)
    return new


def prune_ffn_neurons(model, family: str, scores: torch.Tensor, keep: int) -> None:
    """Keep the `keep` highest-scoring intermediate neurons of every layer (same count everywhere)."""
    fam = FAMILIES[family]
    for layer, block in enumerate(_blocks(model, family)):
        width = get_attr(block, fam.ffn_in).out_features
        if keep >= width:
            continue
        index = torch.argsort(scores[layer], descending=True, stable=True)[:keep].sort().values
        set_attr(block, fam.ffn_in, _slice_linear(get_attr(block, fam.ffn_in), index, dim=0))
        set_attr(block, fam.ffn_out, _slice_linear(get_attr(block, fam.ffn_out), index, dim=1))
    setattr(model.config, fam.ffn_key, min(keep, int(getattr(model.config, fam.ffn_key))))
