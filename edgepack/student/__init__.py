"""Making the student, the fp32 model a bundle ships (issue #4).

- layers.py   a subset of the teacher's layers, weights copied (DistilBERT-style)
- layer_choice.py  which subset: every one scored by fidelity to the teacher (issue #11)
- embedding.py  low-rank word embeddings that keep the whole vocabulary (issue #11)
- shape.py    the `--max-mb` / `--max-latency-ms` search over depth x width x embedding rank (x vocabulary) (issue #11)
- prune.py    structured pruning of attention heads and FFN neurons by importance
- vocab.py    a smaller vocabulary: tokenizer.json and embedding rows rewritten together
- train.py    budgeted distillation that keeps its best checkpoint, on Accelerate (1 CPU, N processes or GPUs)
- distil.py   the recipe: shape -> layer subset -> vocabulary/embeddings -> distil -> prune -> recover, cached by content

With `strategy = "teacher"` the student is the teacher itself (`teacher_itself`).
"""

from __future__ import annotations

from ..cache import hash_dir
from ..context import Student, Teacher
from ..families import require
from ..teacher import weights_dir


def teacher_itself(teacher: Teacher) -> Student:
    path = weights_dir(teacher.path)
    # The hash keys the export cache by content: new weights at the same path must re-export.
    info = {"strategy": "teacher", "description": f"the teacher itself: {teacher.description}", "hash": hash_dir(path)}
    return Student(dir=path, tokenizer_dir=path, is_teacher=True, vocab_pruned=False, info=info)


def refuse_unsupported_steps(teacher: Teacher, spec) -> None:
    """One line naming the step and the family (or tokenizer) for a step the profile asks for but this
    teacher cannot take (issue #13): MPNet's head pruning, vocabulary pruning of BPE/Unigram tokenizers."""
    if spec.heads_keep < 1:
        require(teacher.family, "head pruning")
    if spec.vocab_prune:
        from ..tokenizer import tokenizer_spec
        from .vocab import require_prunable

        require_prunable(tokenizer_spec(teacher.path))
