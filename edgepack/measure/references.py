"""What a bundle is compared with: the teacher and the fp32 student run in torch, tokenised exactly as
the shipped runtime tokenises (modeling.run_torch). Torch is imported only when these are called."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..context import Student, Teacher
from ..errors import UsageError
from ..teacher import inspect_model_dir, resolve_model_path
from ..tokenizer import load_tokenizer


def model_outputs(model_dir: Path, teacher: Teacher, texts, tokenizer, max_length: int, allow_pickle: bool = False) -> np.ndarray:
    """A model directory in torch fp32 with the teacher's head (pooling, normalisation or logits)."""
    from ..modeling import load_hf_model, run_torch, wrap

    head = wrap(load_hf_model(model_dir, teacher.task, allow_pickle), teacher.task, teacher.family, teacher.pooling, teacher.normalize, teacher.dense)
    return run_torch(head, tokenizer, list(texts), max_length)


def build_references(teacher: Teacher, student: Student, texts, bundle_tokenizer, max_length: int,
                     allow_pickle: bool = False) -> dict[str, np.ndarray]:
    """{"teacher", "student_fp32"} outputs on `texts`, rows aligned with them."""
    # A student with a pruned vocabulary (issue #4) has its own ids; the teacher needs its own tokenizer.
    teacher_tokenizer = load_tokenizer(teacher.path) if student.vocab_pruned else bundle_tokenizer
    refs = {"teacher": model_outputs(teacher.path, teacher, texts, teacher_tokenizer, max_length, allow_pickle)}
    if student.is_teacher:
        refs["student_fp32"] = refs["teacher"]
    else:
        refs["student_fp32"] = model_outputs(student.dir, teacher, texts, bundle_tokenizer, max_length, allow_pickle)
    return refs


def teacher_outputs(teacher_dir, task: str, texts, max_length: int, allow_pickle: bool = False) -> np.ndarray:
    """A teacher directory for `edgepack check --teacher`, tokenised with its own tokenizer (the bundle's
    may be pruned)."""
    import torch

    path = resolve_model_path(str(teacher_dir))
    info = inspect_model_dir(path, task, allow_pickle)
    if info.task != task:
        raise UsageError(f"--teacher {teacher_dir}: is a {info.task} model, the bundle is {task}")
    tokenizer = load_tokenizer(path)
    torch.manual_seed(0)
    return model_outputs(path, info, texts, tokenizer, min(max_length, info.max_length), allow_pickle)
