"""Making the student, the fp32 model a bundle ships (issue #4).

- layers.py   a subset of the teacher's layers, weights copied (DistilBERT-style)
- layer_choice.py  which subset: every one scored by fidelity to the teacher (issue #11)
- embedding.py  low-rank word embeddings that keep the whole vocabulary (issue #11)
- shape.py    the `--max-mb` search over depth x embedding rank (issue #11)
- prune.py    structured pruning of attention heads and FFN neurons by importance
- vocab.py    a smaller vocabulary: tokenizer.json and embedding rows rewritten together
- train.py    budgeted distillation that keeps its best checkpoint, on Accelerate (1 CPU, N processes or GPUs)
- distil.py   the recipe: shape -> layer subset -> vocabulary/embeddings -> distil -> prune -> recover, cached by content

With `strategy = "teacher"` the student is the teacher itself (`teacher_itself`).
"""

from __future__ import annotations

from ..cache import hash_dir
from ..context import Student, Teacher
from ..teacher import weights_dir


def teacher_itself(teacher: Teacher) -> Student:
    path = weights_dir(teacher.path)
    # The hash keys the export cache by content: new weights at the same path must re-export.
    info = {"strategy": "teacher", "description": f"the teacher itself: {teacher.description}", "hash": hash_dir(path)}
    return Student(dir=path, tokenizer_dir=path, is_teacher=True, vocab_pruned=False, info=info)
