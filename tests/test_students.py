"""Student construction: which teacher layers, copied weights, position table, save/load round trip."""

from __future__ import annotations

import pytest
import torch

from edgepack.modeling import load_hf_model
from edgepack.student import layers as students
from edgepack.testing import tiny_bert


@pytest.fixture(scope="module")
def deep_tiny(tmp_path_factory):
    return tiny_bert(tmp_path_factory.mktemp("students") / "tiny-4l", layers=4)


def test_pick_layers_is_evenly_spaced_and_keeps_the_last():
    assert students.pick_layers(6, 3) == [1, 3, 5]
    assert students.pick_layers(4, 2) == [1, 3]
    assert students.pick_layers(6, 6) == list(range(6))
    assert students.pick_layers(12, 1) == [11]
    with pytest.raises(ValueError):
        students.pick_layers(4, 5)


def test_layer_subset_copies_weights_and_computes_the_teacher_prefix(deep_tiny, tmp_path):
    teacher = load_hf_model(deep_tiny, "sentence-embedding")
    student = students.layer_subset(teacher, "bert", [0, 1])
    assert student.config.num_hidden_layers == 2 and teacher.config.num_hidden_layers == 4
    assert torch.equal(student.encoder.layer[1].output.dense.weight, teacher.encoder.layer[1].output.dense.weight)
    assert student.encoder.layer[1].output.dense.weight.data_ptr() != teacher.encoder.layer[1].output.dense.weight.data_ptr()
    ids = torch.tensor([[2, 10, 20, 30, 3]])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        want = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[2]
        got = student(input_ids=ids, attention_mask=mask).last_hidden_state
        torch.testing.assert_close(got, want)
        students.truncate_positions(student, "bert", 16)
        assert student.config.max_position_embeddings == 16
        torch.testing.assert_close(student(input_ids=ids, attention_mask=mask).last_hidden_state, want)
    student.save_pretrained(tmp_path / "s", safe_serialization=True)
    reloaded = load_hf_model(tmp_path / "s", "sentence-embedding")
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids, attention_mask=mask).last_hidden_state, want)
