"""The distilled student (issue #4): layer subset -> smaller vocabulary -> distil -> prune -> recover.

Output: a `Student` whose `dir` is an HF directory (config.json + model.safetensors + tokenizer.json)
that `modeling.load_hf_model` loads like any BERT/DistilBERT, with `tokenizer_dir` pointing at it when
the vocabulary was rewritten. Everything is cached under a hash of the teacher's bytes, the training
texts and the [student] settings, so changing only the target re-uses the student.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import torch

from .. import progress
from ..cache import StageDir, hash_dir, hash_parts
from ..context import BuildContext, Student
from ..distributed import is_main_process
from ..errors import ModelError
from ..families import FAMILIES
from ..modeling import load_hf_model
from ..teacher import weights_dir
from ..tokenizer import load_tokenizer, tokenizer_spec
from . import layers, prune, train, vocab

QUICK_MAX_TEXTS = 2000  # --quick distils on at most this many sentences (plus their augmentation)
TRAIN_MAX_LENGTH = 128  # longer inputs are rare in distillation text and cost quadratic attention
SCORING_BATCHES = 16  # batches used to score heads and neurons before pruning


class SecondaryRankDone(SystemExit):
    """Raised on non-main processes once training is done: only rank 0 exports and publishes."""

    def __init__(self):
        super().__init__(0)


def augment(texts, share: float, seed: int, vocab_words=()) -> list[str]:
    """Cheap extra distillation text made from the corpus itself: word spans, sentence joins and,
    given `vocab_words`, sentences with a few words swapped for random words of the teacher's vocabulary.

    Spans teach short inputs (queries, titles), joins teach longer ones. Swapped words matter with a
    pruned vocabulary: words the corpus never uses are split into smaller pieces, and without such
    examples the student never learns what those splits mean (validation cosine drops on them).
    """
    n = int(len(texts) * share)
    if n <= 0 or not texts:
        return []
    rng = random.Random(seed)
    words = [t.split() for t in texts]
    vocab_words = list(vocab_words)
    kinds = 3 if vocab_words else 2
    seen, out = set(texts), []
    for k in range(n * 2):
        if len(out) >= n:
            break
        if k % kinds == 2:
            w = list(rng.choice(words))
            for _ in range(max(1, len(w) // 4)):
                w[rng.randrange(len(w))] = rng.choice(vocab_words)
            text = " ".join(w)
        elif k % kinds == 0:
            w = rng.choice(words)
            if len(w) < 4:
                continue
            a = rng.randrange(0, len(w) - 2)
            b = rng.randrange(a + 3, len(w) + 1)
            text = " ".join(w[a:b])
        else:
            text = f"{rng.choice(texts)} {rng.choice(texts)}"
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def plan_settings(ctx: BuildContext, teacher_layers: int) -> dict:
    spec = ctx.target.student
    quick = ctx.options.quick
    depth = ctx.options.student_layers or spec.layers or max(1, teacher_layers // 2)
    if depth > teacher_layers:
        raise ModelError(f"--student-layers {depth}: the teacher has only {teacher_layers} layers")
    epochs = (spec.quick_epochs or spec.epochs / 4) if quick else spec.epochs
    return {
        "layers": depth,
        "heads_keep": spec.heads_keep,
        "ffn_keep": spec.ffn_keep,
        "vocab_prune": spec.vocab_prune,
        "vocab_size": spec.vocab_size,
        "augment": spec.augment,
        "epochs": epochs,
        "learning_rate": spec.learning_rate,
        "batch_size": spec.batch_size,
        "max_texts": QUICK_MAX_TEXTS if quick else 0,
    }


def make_student(ctx: BuildContext) -> Student:
    t = ctx.teacher
    accel = train.accelerator()
    started = time.perf_counter()
    with open(weights_dir(t.path) / "config.json", encoding="utf-8") as fh:
        teacher_layers = int(json.load(fh).get(FAMILIES[t.family].num_layers_key, 0))
    settings = plan_settings(ctx, teacher_layers)
    teacher_hash = hash_dir(weights_dir(t.path))
    texts = list(ctx.texts.train)
    labels = list(ctx.texts.train_labels) if ctx.texts.train_labels is not None else None
    if settings["max_texts"] and len(texts) > settings["max_texts"]:
        texts = texts[: settings["max_texts"]]  # already shuffled by the data split
        labels = labels[: settings["max_texts"]] if labels is not None else None
    key = hash_parts("distil-v2", teacher_hash, t.task, t.pooling, t.max_length, settings, texts, labels, ctx.options.seed)
    path = ctx.work_dir / f"distil-{key}"
    if is_main_process():
        StageDir(ctx.work_dir, "distil", key)  # clears leftovers of an interrupted run
    accel.wait_for_everyone()
    if not (path / "DONE").is_file():
        _build_student(ctx, accel, path, key, teacher_hash, settings, texts, labels)
    accel.wait_for_everyone()
    if not is_main_process():
        raise SecondaryRankDone()
    info = json.loads((path / "student_info.json").read_text(encoding="utf-8"))
    info["seconds"] = round(time.perf_counter() - started, 1)
    student_dir = path / "student"
    pruned = bool(settings["vocab_prune"])
    return Student(dir=student_dir, tokenizer_dir=student_dir if pruned else weights_dir(t.path), is_teacher=False,
                   vocab_pruned=pruned, info=info)


def _build_student(ctx, accel, path: Path, key: str, teacher_hash: str, settings: dict, texts, labels) -> None:
    t = ctx.teacher
    seed = ctx.options.seed
    torch.manual_seed(seed)
    setup = train.Setup(task=t.task, family=t.family, pooling=t.pooling, max_length=min(t.max_length, TRAIN_MAX_LENGTH))
    teacher = load_hf_model(t.path, t.task, ctx.options.allow_pickle)
    teacher_json = tokenizer_spec(t.path)
    swap_words = [w for w in teacher_json["model"]["vocab"] if len(w) >= 3 and w.isalpha()] if settings["vocab_prune"] else []
    extra = augment(texts, settings["augment"], seed, swap_words)
    all_texts = texts + extra
    all_labels = (labels + [None] * len(extra)) if labels is not None else None
    student_json = teacher_json
    vocab_plan = None
    if settings["vocab_prune"]:
        vocab_plan = vocab.plan(teacher_json, texts, settings["vocab_size"])
        student_json = vocab.rewrite_tokenizer_json(teacher_json, vocab_plan)
    teacher_ids = train.tokenize(load_tokenizer(teacher_json), all_texts, setup.max_length)
    student_ids = train.tokenize(load_tokenizer(student_json), all_texts, setup.max_length)

    bs = settings["batch_size"]
    has_pruning = settings["heads_keep"] < 1 or settings["ffn_keep"] < 1
    phase_epochs = [settings["epochs"] / 2, settings["epochs"] / 2] if has_pruning else [settings["epochs"]]
    steps = [train.steps_for(len(all_texts), bs, e, accel.num_processes) for e in phase_epochs]
    teacher_batches = len(all_texts)
    total = teacher_batches + sum(steps) + (SCORING_BATCHES * bs if has_pruning else 0)
    desc = f"distilling {settings['layers']}-layer student on {len(all_texts)} texts"
    with progress.current().task(desc, total=total) as bar:
        cache_key = train.teacher_cache_key(teacher_hash, setup, all_texts)
        targets_path = ctx.work_dir / f"teacher-outputs-{cache_key}" / "outputs.safetensors"
        counted = [0]

        def tick(n):
            counted[0] += n
            bar.advance(n)

        if is_main_process():
            targets = train.cached_teacher_outputs(
                ctx.work_dir, cache_key, lambda: train.teacher_outputs(teacher, setup, teacher_ids, on_batch=tick)
            )
        accel.wait_for_everyone()
        if not is_main_process():
            from safetensors.torch import load_file

            targets = load_file(str(targets_path))
        bar.advance(teacher_batches - counted[0])  # a cache hit skips the teacher pass

        kept_layers = layers.pick_layers(layers.num_layers(teacher, t.family), settings["layers"])
        student = layers.layer_subset(teacher, t.family, kept_layers)
        layers.truncate_positions(student, t.family, t.max_length)
        if vocab_plan is not None:
            vocab.shrink_word_embeddings(student, t.family, vocab_plan)
        # Word embeddings stay the teacher's: tokens the distillation text never shows keep vectors
        # that match the rest of the table, and training skips half the parameters.
        layers.word_embeddings(student, t.family).weight.requires_grad_(False)
        common = dict(lr=settings["learning_rate"], batch_size=bs, seed=seed, labels=all_labels, accel=accel, on_step=bar.advance)
        curves = [train.distil(student, setup, student_ids, targets, epochs=phase_epochs[0], **common)]
        pruning = {}
        if has_pruning:
            pruning = _prune(student, setup, student_ids, targets, settings, seed, bar)
            curves.append(train.distil(student, setup, student_ids, targets, epochs=phase_epochs[1], **dict(common, seed=seed + 1)))

    if not is_main_process():
        return
    student = accel.unwrap_model(student).eval()
    student_dir = path / "student"
    student.save_pretrained(student_dir, safe_serialization=True)
    (student_dir / "tokenizer.json").write_text(json.dumps(student_json, ensure_ascii=False), encoding="utf-8")
    _check_round_trip(student, student_dir, setup, student_ids[:8])
    teacher_heads = int(getattr(teacher.config, FAMILIES[t.family].num_heads_key))
    vocab_size = len(student_json["model"]["vocab"])
    info = {
        "strategy": "distil",
        "description": layers.describe(student, t.family, teacher_heads, vocab_size),
        "hash": key,
        "teacher_layers_kept": kept_layers,
        "heads_per_layer": prune.heads_per_layer(student, t.family),
        "ffn": int(getattr(student.config, FAMILIES[t.family].ffn_key)),
        "vocab_size": vocab_size,
        "parameters": {
            "teacher": layers.parameter_count(teacher),
            "student": layers.parameter_count(student),
            "teacher_word_embeddings": layers.embedding_parameter_count(teacher, t.family),
            "student_word_embeddings": layers.embedding_parameter_count(student, t.family),
        },
        "distillation": {
            "texts": len(texts),
            "augmented_texts": len(extra),
            "epochs": settings["epochs"],
            "phases": [train.curve_summary(c) for c in curves],
            "processes": accel.num_processes,
        },
        "pruning": pruning,
        "vocab_coverage": vocab.coverage(teacher_json, student_json, ctx.texts.validation) if vocab_plan else None,
        "settings": settings,
    }
    train.write_json(path / "student_info.json", info)
    (path / "DONE").write_text("ok\n")


def _prune(student, setup, ids, targets, settings, seed, bar) -> dict:
    family = setup.family
    batches = train.make_batches(ids, settings["batch_size"], seed, epoch=99)[:SCORING_BATCHES]

    def loss_fn(model, index, head_mask):
        out = train.forward(model, setup, *train.collate(ids, index), head_mask=head_mask)
        return train.loss_terms(setup, out, {k: v[index] for k, v in targets.items()})

    head_scores, ffn_scores = prune.importance_scores(student, family, batches, loss_fn)
    bar.advance(SCORING_BATCHES * settings["batch_size"])
    n_heads, width = head_scores.shape[1], ffn_scores.shape[1]
    heads_keep = prune.keep_count(n_heads, settings["heads_keep"])
    ffn_keep = prune.keep_count(width, settings["ffn_keep"])
    removed = prune.prune_attention_heads(student, family, head_scores, heads_keep)
    prune.prune_ffn_neurons(student, family, ffn_scores, ffn_keep)
    return {"heads_kept": heads_keep, "heads_of": n_heads, "heads_removed": removed, "ffn_kept": ffn_keep, "ffn_of": width,
            "method": "gradient x activation (Taylor), uniform per layer"}


@torch.no_grad()
def _check_round_trip(student, student_dir: Path, setup, ids) -> None:
    """The saved student must reload to the same function (pruned heads live in config.pruned_heads)."""
    reloaded = load_hf_model(student_dir, setup.task)
    batch = train.collate(ids, list(range(len(ids))))
    a = train.forward(student, setup, *batch)
    b = train.forward(reloaded, setup, *batch)
    for k in a:
        if not torch.allclose(a[k], b[k], atol=1e-4, rtol=1e-4):
            raise ModelError(f"internal: the saved student does not reproduce itself ({k} differs)")
