"""Structured pruning: scores, physical removal, and outputs that stay consistent through save/load and ONNX."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgepack.families import FAMILIES
from edgepack.modeling import load_hf_model, wrap
from edgepack.student import prune
from edgepack.student.train import Setup, collate, forward, loss_terms, tokenize
from edgepack.testing import TINY_SENTENCES

SETUP = Setup(task="sentence-embedding", family="bert", pooling="mean", max_length=32)


@pytest.fixture(scope="module")
def ids(tiny_model):
    from tokenizers import Tokenizer

    return tokenize(Tokenizer.from_file(str(tiny_model / "tokenizer.json")), TINY_SENTENCES, 32)


def _model(tiny_model):
    torch.manual_seed(0)
    return load_hf_model(tiny_model, "sentence-embedding")


def _embed(model, ids):
    with torch.no_grad():
        return forward(model, SETUP, *collate(ids, list(range(len(ids)))))["embedding"]


def _scores(model, ids, targets):
    batches = [list(range(0, 8)), list(range(8, 16))]

    def loss_fn(m, index, head_mask):
        out = forward(m, SETUP, *collate(ids, index), head_mask=head_mask)
        return loss_terms(SETUP, out, {k: v[index] for k, v in targets.items()})

    return prune.importance_scores(model, "bert", batches, loss_fn)


def _silence_head_and_neurons(model, head: int, neurons: list[int]):
    """Zero what a head and some FFN neurons contribute: they cannot matter, so pruning them is exact."""
    size = model.config.hidden_size // model.config.num_attention_heads
    with torch.no_grad():
        for block in model.encoder.layer:
            block.attention.output.dense.weight[:, head * size : (head + 1) * size] = 0
            block.output.dense.weight[:, neurons] = 0


def test_scores_have_one_value_per_head_and_neuron(tiny_model, ids):
    model = _model(tiny_model)
    targets = {"embedding": torch.randn(len(ids), 32)}
    heads, ffn = _scores(model, ids, targets)
    assert heads.shape == (2, 4) and ffn.shape == (2, 64)
    assert (heads >= 0).all() and (ffn >= 0).all() and heads.sum() > 0 and ffn.sum() > 0
    assert all(p.grad is None for p in model.parameters())  # scoring leaves no gradients behind


def test_silent_heads_and_neurons_score_zero_and_are_removed_exactly(tiny_model, ids, tmp_path):
    model = _model(tiny_model)
    _silence_head_and_neurons(model, head=1, neurons=list(range(0, 64, 2)))
    before = _embed(model, ids)
    targets = {"embedding": torch.randn(len(ids), 32)}
    heads, ffn = _scores(model, ids, targets)
    assert torch.all(heads[:, 1] == 0)
    assert torch.all(ffn[:, 0::2] == 0)

    removed = prune.prune_attention_heads(model, "bert", heads, keep=3)
    prune.prune_ffn_neurons(model, "bert", ffn, keep=32)
    assert removed == {0: [1], 1: [1]}
    for block in model.encoder.layer:
        assert block.attention.self.query.out_features == 3 * 8
        assert block.attention.output.dense.in_features == 3 * 8
        assert block.intermediate.dense.out_features == 32 and block.output.dense.in_features == 32
    assert model.config.intermediate_size == 32
    assert prune.heads_per_layer(model, "bert") == [3, 3]
    torch.testing.assert_close(_embed(model, ids), before, atol=1e-5, rtol=1e-5)

    # Save and reload: config.pruned_heads rebuilds the same shapes and the same function.
    model.save_pretrained(tmp_path / "pruned", safe_serialization=True)
    reloaded = load_hf_model(tmp_path / "pruned", "sentence-embedding")
    assert reloaded.encoder.layer[0].attention.self.num_attention_heads == 3
    torch.testing.assert_close(_embed(reloaded, ids), before, atol=1e-5, rtol=1e-5)


def test_pruned_model_exports_to_onnx_with_same_outputs(tiny_model, ids, tmp_path):
    import onnxruntime as ort

    from edgepack.export import export_onnx

    model = _model(tiny_model)
    targets = {"embedding": torch.randn(len(ids), 32)}
    heads, ffn = _scores(model, ids, targets)
    prune.prune_attention_heads(model, "bert", heads, keep=2)
    prune.prune_ffn_neurons(model, "bert", ffn, keep=16)
    model.save_pretrained(tmp_path / "m", safe_serialization=True)
    head = wrap(load_hf_model(tmp_path / "m", "sentence-embedding"), "sentence-embedding", "bert")
    export_onnx(head, tmp_path / "m.onnx", "sentence-embedding")
    input_ids, mask = collate(ids, list(range(len(ids))))
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input_ids": input_ids.numpy(), "attention_mask": mask.numpy()})[0]
    with torch.no_grad():
        want = head(input_ids, mask).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_keep_count_bounds():
    assert prune.keep_count(12, 0.5) == 6
    assert prune.keep_count(12, 0.01) == 1
    assert prune.keep_count(12, 1.0) == 12


def test_distilbert_facts_describe_its_blocks(tmp_path):
    from transformers import DistilBertConfig, DistilBertModel

    torch.manual_seed(0)
    model = DistilBertModel(DistilBertConfig(vocab_size=50, dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=64)).eval()
    ids = [[1, 5, 7, 9, 2], [1, 8, 2]]
    setup = Setup(task="sentence-embedding", family="distilbert", pooling="mean", max_length=16)
    targets = {"embedding": torch.randn(2, 32)}

    def loss_fn(m, index, head_mask):
        return loss_terms(setup, forward(m, setup, *collate(ids, index), head_mask=head_mask), {k: v[index] for k, v in targets.items()})

    heads, ffn = prune.importance_scores(model, "distilbert", [[0, 1]], loss_fn)
    prune.prune_attention_heads(model, "distilbert", heads, keep=2)
    prune.prune_ffn_neurons(model, "distilbert", ffn, keep=16)
    fam = FAMILIES["distilbert"]
    assert getattr(model.config, fam.ffn_key) == 16
    assert model.transformer.layer[0].ffn.lin1.out_features == 16
    assert model.transformer.layer[0].attention.q_lin.out_features == 16
    with torch.no_grad():
        out = forward(model, setup, *collate(ids, [0, 1]))["embedding"]
    assert out.shape == (2, 32) and torch.isfinite(out).all()
