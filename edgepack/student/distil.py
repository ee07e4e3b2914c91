"""The distilled student (issues #4, #11): shape -> layer subset -> vocabulary or low-rank embeddings ->
distil (best checkpoint, within a budget) -> prune -> recover.

A held-out slice of the training text (never trained on) measures everything that is chosen: which
teacher layers to keep, which shape fits `--max-mb`, and which checkpoint ships.

Output: a `Student` whose `dir` is an HF directory (config.json + model.safetensors + tokenizer.json)
that `modeling.load_hf_model` loads like any BERT/DistilBERT, with `tokenizer_dir` pointing at it when
the vocabulary was rewritten. Everything is cached under a hash of the teacher's bytes, the training
texts and the [student] settings, so changing only the target re-uses the student.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import random
import time
from pathlib import Path

import torch

from .. import progress
from ..cache import StageDir, hash_dir, hash_parts
from ..config import parse_budget
from ..context import BuildContext, Student
from ..distributed import is_main_process
from ..errors import ModelError
from ..families import FAMILIES
from ..measure.stats import share_standard_error
from ..modeling import load_hf_model, wrap
from ..quant import int4
from ..teacher import weights_dir
from ..tokenizer import load_tokenizer, tokenizer_spec
from . import embedding, layer_choice, layers, prune, train, vocab
from . import shape as shape_search

QUICK_MAX_TEXTS = 2000  # --quick distils on at most this many sentences (plus their augmentation)
HELD_OUT_TEXTS = 256  # training texts set aside to score layer subsets, shapes and checkpoints (issue #11)
SHAPE_TEXTS = 128  # of those, the ones that score layer subsets and shapes
LISTED_CANDIDATES = 5  # layer subsets listed in the report
TEACHER_SHARE_OF_TIME = 0.3  # with a time budget, the share the teacher pass may take
# With a time budget, what training leaves for the last evaluation, saving and the reload check: a
# --budget 15m build of 77k texts ran 3.5 s over without it (bench/results/fidelity.md).
SAVE_RESERVE_SECONDS = 20.0
FALLBACK_TEACHER_RATE = 200.0  # texts/s, only when nothing was held out to time the teacher on
# Passes over the distillation text a step budget plans for: on 2 cores the teacher's pass over a text
# costs more than a student step on it, and the held-out score still rose at the end of one pass.
TEXT_PASSES = 2
TRAIN_MAX_LENGTH = 128  # longer inputs are rare in distillation text and cost quadratic attention
SCORING_BATCHES = 16  # batches used to score heads and neurons before pruning
PROBE_CANDIDATES = 4  # shape search: candidates (best untrained, plus the best at full width and in the teacher's vocabulary) distilled briefly
PROBE_STEPS = 100  # ... for this many steps each (see _probe_training)


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
    spec = ctx.target.student_for(ctx.teacher.task)
    q = ctx.target.quantize
    quick = ctx.options.quick
    depth = ctx.options.student_layers or spec.layers or max(1, teacher_layers // 2)
    if depth > teacher_layers:
        raise ModelError(f"--student-layers {depth}: the teacher has only {teacher_layers} layers")
    epochs = (spec.quick_epochs or spec.epochs / 4) if quick else spec.epochs
    steps = (spec.quick_steps or max(1, spec.steps // 4)) if quick and spec.steps else spec.steps
    seconds = 0.0 if quick else spec.minutes * 60
    precision = train.resolve_precision(spec.train_precision, train.training_device())
    if ctx.options.budget:
        steps, seconds = parse_budget(ctx.options.budget)
    return {
        "layers": depth,
        "layer_choice": spec.layer_choice,
        "embedding_rank": spec.embedding_rank,
        "train_embeddings": spec.train_embeddings,
        "fill_text": spec.fill_text,
        "max_mb": ctx.options.max_mb or 0,
        **({"max_latency_ms": ctx.options.max_latency_ms} if ctx.options.max_latency_ms else {}),  # absent: same cache keys
        **({"min_speedup": ctx.options.min_speedup} if ctx.options.min_speedup else {}),
        "heads_keep": spec.heads_keep,
        "ffn_keep": spec.ffn_keep,
        "vocab_prune": spec.vocab_prune,
        "vocab_size": spec.vocab_size,
        "augment": spec.augment,
        "epochs": epochs,
        "steps": steps,
        "seconds": seconds,
        "eval_every": spec.eval_every,
        "patience": spec.patience,
        # absent at 0: earlier students keep their cache keys. "token_layers": since 2026-12-07 every layer is matched,
        # not only the last, so a student distilled with the earlier token loss is not re-used for it.
        **({"token_loss": spec.token_loss, "token_layers": "matched"} if spec.token_loss else {}),
        # resolved here, so the cache key tells a bf16-trained student from a float32 one; absent for fp32 (cache keys kept)
        **({"train_precision": precision} if precision != "fp32" else {}),
        # A frozen lookup is put on the int4 grid the files will store it on (quant/int4.py), so the fp32 student the
        # parity gates compare with holds the shipped table. Absent otherwise: other students keep their cache keys.
        **({"int4_lookup_block": q.embedding_block_size} if not spec.train_embeddings and q.mode == "dynamic-int8"
           and q.embedding_bits == 4 else {}),
        # classifiers keep the latest checkpoint within the held-out agreement's noise of the best (_agreement_noise)
        **({"checkpoint_rule": "latest-within-noise"} if ctx.teacher.task == "text-classification" else {}),
        "learning_rate": spec.learning_rate,
        "batch_size": spec.batch_size,
        "dropout": spec.dropout,
        "max_texts": QUICK_MAX_TEXTS if quick else 0,
        # Position rows the student keeps: every bucket is exported, even one longer than the teacher's
        # max_seq_length (the runtime never fills it past that length, but the graph still indexes it).
        "positions": max(ctx.teacher.max_length, max(ctx.target.sequence_buckets)),
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
    key = hash_parts("distil-v3", teacher_hash, t.task, t.pooling, t.max_length, settings, texts, labels, ctx.options.seed,
                     _size_inputs(ctx) if _searched(settings) else None,
                     # a pruned vocabulary's layers are measured now, not evenly spaced (other students keep their keys)
                     *(("vocab-v2",) if settings["vocab_prune"] else ()))
    # Rank 0 alone writes the student (into the stage's staging directory); every rank trains. Whether to
    # train is rank 0's answer too: ranks that disagreed (another build publishing the key in between)
    # would leave one rank waiting in DDP for the others.
    stage = StageDir(ctx.work_dir, "distil", key) if is_main_process() else None
    if not _agreed(accel, stage.done if stage else None):
        _build_student(ctx, accel, stage, key, teacher_hash, settings, texts, labels, started)
    accel.wait_for_everyone()
    if not is_main_process():
        raise SecondaryRankDone()
    path = stage.final
    info = json.loads((path / "student_info.json").read_text(encoding="utf-8"))
    info["seconds"] = round(time.perf_counter() - started, 1)
    student_dir = path / "student"
    # With vocab_prune the shape search may still keep the teacher's whole vocabulary (it fits and scores best)
    pruned = bool(info.get("vocab_pruned", settings["vocab_prune"]))
    return Student(dir=student_dir, tokenizer_dir=student_dir if pruned else weights_dir(t.path), is_teacher=False,
                   vocab_pruned=pruned, info=info)


def _agreed(accel, value):
    """Rank 0's `value` on every rank."""
    if accel.num_processes == 1:
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value])[0]


def _searched(settings: dict) -> bool:
    """Whether the student's shape comes from the shape search (a size or latency budget)."""
    return bool(settings["max_mb"] or _timed(settings))


def _timed(settings: dict) -> bool:
    """Whether the shape search times candidates (a latency budget, absolute or relative to the teacher)."""
    return bool(settings.get("max_latency_ms") or settings.get("min_speedup"))


def _size_inputs(ctx: BuildContext) -> dict:
    """What the shape search depends on besides the teacher (part of the cache key then; without a budget
    the quantisation settings don't change the student, so a new target re-uses it). The measured
    latencies depend on the machine too, which no key can name: a cached student is re-used as it is."""
    q = ctx.target.quantize
    out = {"embedding_bits": q.embedding_bits, "embedding_block_size": q.embedding_block_size, "mode": q.mode}
    # 2: heads/FFN widths and short probe distillations; 3: size estimates count the signatures. The vocabulary
    # dimension (vocab_prune only) is keyed by "vocab-v2" in make_student: other searched students keep their keys.
    out["search"] = 3
    out["signatures"] = _signatures(ctx)
    if ctx.options.max_latency_ms or ctx.options.min_speedup:
        out.update(spec=repr(q), seq=min(ctx.target.sequence_buckets), threads=ctx.target.threads)
    return out


def _signatures(ctx: BuildContext) -> int:
    """Signatures in the largest file the size estimate must fit: a .tflite holds one per sequence bucket."""
    return len(ctx.target.sequence_buckets) if "tflite" in ctx.target.formats else 1


def held_out_split(texts: list[str], labels) -> tuple[list[str], list, list[str], list]:
    """(held-out texts, their labels, training texts, their labels): the held-out slice scores layer
    subsets, shapes and checkpoints, and is never trained on. The texts arrive shuffled (data split)."""
    n = min(HELD_OUT_TEXTS, max(4, len(texts) // 10)) if len(texts) >= 8 else 0
    lab = labels or [None] * len(texts)
    return texts[:n], lab[:n], texts[n:], lab[n:]


def _build_student(ctx, accel, stage: StageDir | None, key: str, teacher_hash: str, settings: dict, texts, labels, started) -> None:
    t = ctx.teacher
    seed = ctx.options.seed
    torch.manual_seed(seed)
    token_weight = settings.get("token_loss", 0.0)
    setup = train.Setup(task=t.task, family=t.family, pooling=t.pooling, max_length=min(t.max_length, TRAIN_MAX_LENGTH),
                        token_weight=token_weight, precision=settings.get("train_precision", "fp32"),
                        dropout=settings["dropout"])
    teacher = load_hf_model(t.path, t.task, ctx.options.allow_pickle).eval()
    teacher_json = tokenizer_spec(t.path)
    held_texts, held_labels, train_texts, train_labels = held_out_split(texts, labels)
    swap_words = [w for w in teacher_json["model"]["vocab"] if len(w) >= 3 and w.isalpha()] if settings["vocab_prune"] else []
    extra = augment(train_texts, settings["augment"], seed, swap_words)
    all_texts = train_texts + extra
    all_labels = (train_labels + [None] * len(extra)) if labels is not None else None
    vocabs = _Vocabularies.plan(teacher_json, train_texts, settings, setup.max_length)
    t_tok = load_tokenizer(teacher_json)
    budget = _budget(settings, len(all_texts), accel.num_processes)
    reporter = progress.current()

    # 1. The teacher's outputs on the held-out slice: they score layer subsets, shapes and checkpoints.
    #    With a time budget they are computed (not read from the cache) and timed: the teacher's speed on
    #    this machine says how many distillation texts the budget can afford. A cached result would give
    #    no speed, and a guessed one another text sample, so a re-run would miss the teacher cache.
    held_t_ids = train.tokenize(t_tok, held_texts, setup.max_length)
    held_targets, teacher_rate = {}, 0.0
    if held_texts and budget.seconds:
        t0 = time.perf_counter()
        held_targets = train.teacher_outputs(teacher, setup, held_t_ids)
        teacher_rate = len(held_texts) / max(time.perf_counter() - t0, 1e-3)
    elif held_texts:
        held_targets = train.cached_teacher_outputs(ctx.work_dir, train.teacher_cache_key(teacher_hash, setup, held_texts),
                                                    lambda: train.teacher_outputs(teacher, setup, held_t_ids))
    all_texts, all_labels = _cap_texts(all_texts, all_labels, settings, budget, teacher_rate, seed)
    filled = []
    if settings["fill_text"] and ctx.options.data:
        filled = _fill_texts(all_texts, held_texts, _text_cap(settings, budget, teacher_rate), seed)
        all_texts = all_texts + filled
        all_labels = (all_labels + [None] * len(filled)) if all_labels is not None else None
    teacher_ids = train.tokenize(t_tok, all_texts, setup.max_length)

    # 2. The shape: how many layers (and which), how wide an embedding, which vocabulary. Measured, not assumed.
    choose = functools.partial(_choose_shape, ctx, teacher, settings, held_t_ids, held_targets, setup, reporter, teacher_ids,
                               vocabs=vocabs, held_texts=held_texts, distil_texts=all_texts)
    if accel.num_processes > 1 and _searched(settings):
        # Measured latencies differ from process to process (and timing them all at once skews them), and
        # the search's short probes train on one process: rank 0 searches, the others take its shape.
        shape = _agreed(accel, choose() if is_main_process() else None)
    else:
        shape = choose()
    vocab_plan, student_json = vocabs.specs[shape["vocab"]]
    held_s_ids = vocabs.ids(shape["vocab"], held_texts) if vocab_plan else held_t_ids
    student_ids = vocabs.ids(shape["vocab"], all_texts) if vocab_plan else teacher_ids
    score = (lambda m: train.held_out_score(m, setup, held_s_ids, held_targets)) if held_texts else None
    # 3. The teacher's outputs on the distillation text (cached by content), then the student itself.
    # The width to prune to: the profile's, or the one the shape search chose.
    settings_used = dict(settings, heads_keep=shape["heads_keep"], ffn_keep=shape["ffn_keep"])
    if token_weight:  # each student layer learns the teacher layer it starts as; the last learns the teacher's last
        setup = dataclasses.replace(setup, token_layers=tuple(shape["layers"][:-1]) + (layers.num_layers(teacher, t.family) - 1,))
    has_pruning = settings_used["heads_keep"] < 1 or settings_used["ffn_keep"] < 1
    phases = budget.split((0.5, 0.5)) if has_pruning else [budget]
    # Two progress tasks, not one: the teacher's pass is fast per text and the steps are slow, so one bar over
    # texts + steps sat at 95% for most of the build. A cache hit skips the first.
    targets = None  # with token_loss and no pruning, training takes them from its per-batch teacher pass
    # With token_loss the teacher runs on every training batch anyway (its token states are too large to cache), and
    # that pass gives its logits or embeddings too: the up-front pass over the distillation text is then needed only
    # by the pruning's importance scores. Skipping it saved 39 s of the bench classifier's build (16,000 texts).
    if not token_weight or has_pruning:
        cache_key = train.teacher_cache_key(teacher_hash, setup, all_texts)
        with reporter.task(f"teacher outputs for {len(all_texts)} distillation texts", total=len(all_texts)) as bar:
            def compute():
                return train.teacher_outputs(teacher, setup, teacher_ids, on_batch=bar.advance)

            if is_main_process():
                targets = train.cached_teacher_outputs(ctx.work_dir, cache_key, compute)
            accel.wait_for_everyone()
            if not is_main_process():  # rank 0 has published them: a cache hit
                targets = train.cached_teacher_outputs(ctx.work_dir, cache_key, compute)
            bar.update(completed=len(all_texts))  # a cache hit skips the pass
    desc = f"distilling {len(shape['layers'])}-layer student on {len(all_texts)} texts, steps"
    scoring = SCORING_BATCHES * settings["batch_size"] if has_pruning else 0
    total = None if budget.seconds else sum(p.steps for p in phases) + scoring  # time: no fixed end
    with reporter.task(desc, total=total) as bar:
        student = layers.layer_subset(teacher, t.family, shape["layers"])
        layers.truncate_positions(student, t.family, settings["positions"])
        if vocab_plan is not None:
            vocab.shrink_word_embeddings(student, t.family, vocab_plan)
        if shape["rank"]:
            embedding.factorise_word_embeddings(student, t.family, shape["rank"])
        if not settings["train_embeddings"]:
            _freeze_embedding_table(student, t.family, settings.get("int4_lookup_block", 0))
        if budget.seconds:  # the clock started with the stage: what is left, less saving, goes to training
            reserve = min(SAVE_RESERVE_SECONDS, 0.05 * budget.seconds)
            left = max(1.0, budget.seconds - reserve - (time.perf_counter() - started))
            phases = dataclasses.replace(budget, seconds=left).split((0.5, 0.5) if has_pruning else (1.0,))

        def on_step(n, loss):
            bar.advance(n)
            bar.set_metrics(loss=round(loss, 4))

        def on_eval(step, value):
            bar.set_metrics(held_out=round(value, 4))

        common = dict(lr=settings["learning_rate"], batch_size=settings["batch_size"], seed=seed, labels=all_labels,
                      accel=accel, on_step=on_step, evaluate=score, on_eval=on_eval,
                      teacher=teacher.to(accel.device) if token_weight else None,
                      tolerance=_agreement_noise(len(held_texts)) if t.task == "text-classification" else None)
        curves = [train.distil(student, setup, student_ids, targets, budget=phases[0], **common)]
        pruning = {}
        if has_pruning:
            pruning = _prune(student, setup, student_ids, targets, settings_used, seed, bar)
            curves.append(train.distil(student, setup, student_ids, targets, budget=phases[1], **dict(common, seed=seed + 1)))

    if not is_main_process():
        return
    student = accel.unwrap_model(student).eval()
    student_dir = stage.path / "student"
    student.save_pretrained(student_dir, safe_serialization=True)
    (student_dir / "tokenizer.json").write_text(json.dumps(student_json, ensure_ascii=False), encoding="utf-8")
    _check_round_trip(student, student_dir, setup, student_ids[:8])
    teacher_heads = int(getattr(teacher.config, FAMILIES[t.family].num_heads_key))
    vocab_size = len(student_json["model"]["vocab"])
    info = {
        "strategy": "distil",
        "description": layers.describe(student, t.family, teacher_heads, vocab_size, shape["rank"]),
        "hash": key,
        "teacher_layers_kept": list(shape["layers"]),
        "layer_choice": shape["layer_choice"],
        "shape_search": shape.get("search"),
        "embedding_rank": shape["rank"],
        "heads_per_layer": prune.heads_per_layer(student, t.family),
        "ffn": int(getattr(student.config, FAMILIES[t.family].ffn_key)),
        "vocab_size": vocab_size,
        "vocab_pruned": vocab_plan is not None,
        "parameters": {
            "teacher": layers.parameter_count(teacher),
            "student": layers.parameter_count(student),
            "teacher_word_embeddings": layers.embedding_parameter_count(teacher, t.family),
            "student_word_embeddings": layers.embedding_parameter_count(student, t.family),
        },
        "distillation": {
            "texts": len(train_texts),
            "augmented_texts": len(extra),
            "filled_texts": len(filled),  # built-in general text added to a small --data set
            "distilled_texts": len(all_texts),
            "held_out_texts": len(held_texts),
            "teacher_texts_per_second": round(teacher_rate, 1) if teacher_rate else None,  # time budgets only
            "budget": {"steps": budget.steps if not budget.seconds else None, "seconds": budget.seconds or None,
                       "eval_every": budget.eval_every, "patience": budget.patience},
            "epochs": settings["epochs"] if not settings["steps"] and not settings["seconds"] else None,
            "phases": [c.summary() for c in curves],
            "processes": accel.num_processes,
        },
        "pruning": pruning,
        "vocab_coverage": vocab.coverage(teacher_json, student_json, ctx.texts.validation) if vocab_plan else None,
        "settings": settings,
    }
    train.write_json(stage.path / "student_info.json", info)
    stage.mark_done()


@dataclasses.dataclass
class _Vocabularies:
    """The vocabularies the student may take, keyed by `Shape.vocab` (rows kept; 0 = the teacher's own):
    (VocabPlan or None, tokenizer.json). Without vocab_prune only the teacher's; with it and no shape
    budget only the profile's plan (`vocab_size`); with a shape budget the teacher's, VOCAB_KEEPS of it and
    the profile's plan, for the search to choose from."""

    specs: dict
    max_length: int

    @classmethod
    def plan(cls, teacher_json: dict, texts, settings: dict, max_length: int) -> "_Vocabularies":
        if not settings["vocab_prune"]:
            return cls({0: (None, teacher_json)}, max_length)
        if not _searched(settings):  # the profile's pruned vocabulary, no other to choose
            p = vocab.plan(teacher_json, texts, settings["vocab_size"])
            return cls({p.new_size: (p, vocab.rewrite_tokenizer_json(teacher_json, p))}, max_length)
        rows = len(teacher_json["model"]["vocab"])
        specs = {0: (None, teacher_json)}
        for p in vocab.plans(teacher_json, texts, [settings["vocab_size"]] + [round(k * rows) for k in shape_search.VOCAB_KEEPS]):
            # a size below what the corpus needs gives the same plan as another; one as large as the teacher's is none
            if p.new_size < rows and p.new_size not in specs:
                specs[p.new_size] = (p, vocab.rewrite_tokenizer_json(teacher_json, p))
        return cls(specs, max_length)

    def ids(self, rows: int, texts) -> list[list[int]]:
        """`texts` tokenised with the vocabulary of `rows` rows."""
        return train.tokenize(load_tokenizer(self.specs[rows][1]), texts, self.max_length)


def _budget(settings: dict, n_texts: int, processes: int) -> train.Budget:
    """Steps from the profile (or `--budget N`), else from epochs; a time budget caps steps only by time."""
    if settings["seconds"]:
        steps = 10**9
    elif settings["steps"]:
        steps = settings["steps"]
    else:
        steps = train.steps_for(n_texts, settings["batch_size"], settings["epochs"], processes)
    return train.Budget(steps=steps, seconds=settings["seconds"], eval_every=settings["eval_every"],
                        patience=settings["patience"])


def _text_cap(settings, budget: train.Budget, teacher_rate: float) -> int | None:
    """How much distillation text the budget can use: TEXT_PASSES passes over `steps x batch`, or, with a
    time budget, what TEACHER_SHARE_OF_TIME of it can run the teacher on (`teacher_rate`, texts per second,
    measured on the held-out slice). None for an epoch budget, which is sized from the texts."""
    if budget.seconds:
        rate = teacher_rate or FALLBACK_TEACHER_RATE
        # coarse steps of 1,024 texts, so a re-run on the same machine usually re-uses the teacher cache
        return max(1024, int(rate * budget.seconds * TEACHER_SHARE_OF_TIME) // 1024 * 1024)
    if settings["steps"]:
        return budget.steps * settings["batch_size"] // TEXT_PASSES
    return None


def _cap_texts(texts, labels, settings, budget: train.Budget, teacher_rate: float, seed: int):
    """No more distillation text than the budget can use (`_text_cap`): a seeded sample, so a step budget
    gives the same texts every time."""
    cap = _text_cap(settings, budget, teacher_rate)
    if cap is None or len(texts) <= cap:
        return texts, labels
    order = sorted(random.Random(seed).sample(range(len(texts)), cap))
    return [texts[i] for i in order], ([labels[i] for i in order] if labels is not None else None)


def _fill_texts(texts, held_texts, cap: int | None, seed: int) -> list[str]:
    """Built-in general English (unlabelled: the teacher's outputs are the targets) for the part of the
    budget that a small --data set leaves unused. Distillation text only has to be text the teacher can
    label; more and broader text teaches the student the teacher's function beyond the user's rows. An
    SST-2 classifier distilled on its 5,600 short training phrases alone kept 95.6% of the teacher's
    accuracy on full dev sentences (bench/results/fidelity.md); the held-out slice that picks the
    checkpoint stays the user's own text."""
    if cap is None or len(texts) >= cap:
        return []
    from ..data import general_corpus

    seen = set(texts) | set(held_texts)
    pool = [t for t in general_corpus() if t not in seen]
    random.Random(seed).shuffle(pool)
    return pool[: cap - len(texts)]


def _choose_shape(ctx, teacher, settings, held_ids, held_targets, setup, reporter, distil_ids=(), *, vocabs: _Vocabularies,
                  held_texts=(), distil_texts=()) -> dict:
    """Which teacher layers to keep, the embedding rank, the width (heads, FFN kept) and the vocabulary:
    from the profile, by measured layer choice, or (with `--max-mb` / `--max-latency-ms` / `--min-speedup`)
    by the shape search. `held_ids` and `distil_ids` are the teacher's token ids of `held_texts` and
    `distil_texts`. Returns {"layers", "rank", "heads_keep", "ffn_keep", "vocab", "layer_choice"} (+ "search")."""
    t = ctx.teacher
    n = layers.num_layers(teacher, t.family)

    # Candidates are ranked on the first SHAPE_TEXTS held-out texts, half of what picks checkpoints:
    # every subset costs a forward pass, and on 2 cores 20 subsets of 256 texts took over a minute.
    ids, targets = held_ids[:SHAPE_TEXTS], {k: v[:SHAPE_TEXTS] for k, v in held_targets.items()}

    def score(model) -> float:
        return train.held_out_score(model, setup, ids, targets)

    # Layer subsets are cut from the teacher and scored in its own token ids, also where the student will
    # prune the vocabulary: which layers carry the function does not depend on the lookup table's rows.
    measurable = bool(held_ids)
    width = {"heads_keep": settings["heads_keep"], "ffn_keep": settings["ffn_keep"]}
    if _searched(settings) and measurable:
        # The rest of the held-out slice scores heads and neurons for the pruned candidates (all of it
        # when it is small): not the texts that rank them.
        rest = len(held_ids) > SHAPE_TEXTS
        importance = (held_ids[SHAPE_TEXTS:], {k: v[SHAPE_TEXTS:] for k, v in held_targets.items()}) if rest else (ids, targets)
        probe_texts = list(distil_texts[: PROBE_STEPS * settings["batch_size"]])
        texts_of = {"held": held_texts[:SHAPE_TEXTS], "probe": probe_texts}
        teacher_ids_of = {"held": ids, "probe": distil_ids[: len(probe_texts)]}

        @functools.cache
        def tokens(rows: int, which: str) -> list:
            """The ranking ("held") or probe distillation ("probe") texts in the token ids of the vocabulary
            of `rows` rows (0: the teacher's, already tokenised); each vocabulary tokenises them once."""
            return teacher_ids_of[which] if not rows else vocabs.ids(rows, texts_of[which])

        def score_in(model, rows: int) -> float:
            return train.held_out_score(model, setup, tokens(rows, "held"), targets)

        return _search_shape(ctx, teacher, settings, setup, score, importance, reporter, distil_ids, vocabs, score_in,
                             lambda rows: tokens(rows, "probe"))
    depth, rank = settings["layers"], settings["embedding_rank"]
    if settings["layer_choice"] == "measured" and depth < n and measurable:
        with reporter.task(f"scoring {depth}-of-{n} layer subsets on {len(ids)} held-out texts", total=None):
            ranked = layer_choice.measured_layers(teacher, t.family, depth, score)
        chosen = list(ranked[0].layers)
        choice = _choice_record(ranked, n, t.task)
    else:
        chosen = layers.pick_layers(n, depth)
        choice = {"method": "even" if depth < n else "all", "candidates": [], "scored": 0}
    rows = next((r for r in vocabs.specs if r), 0)  # the profile's: its pruned plan with vocab_prune, else the teacher's (0)
    return {"layers": chosen, "rank": rank, **width, "vocab": rows, "layer_choice": choice}


def _search_shape(ctx, teacher, settings, setup, score, importance, reporter, distil_ids, vocabs, score_in, probe_ids) -> dict:
    """The shape search (student/shape.py): candidates by estimated size, measured latency and untrained
    score; the best few that fit every budget distilled briefly (`_probe_training`), and the best of those.
    `score_in(model, rows)` scores a candidate in its vocabulary's token ids, `probe_ids(rows)` gives the
    probe distillation's texts in them (rows 0: the teacher's vocabulary)."""
    t = ctx.teacher
    cfg, fam = teacher.config, FAMILIES[t.family]
    dims = shape_search.Dimensions(
        vocab=int(getattr(cfg, fam.vocab_key)), hidden=int(getattr(cfg, fam.hidden_key)), ffn=int(getattr(cfg, fam.ffn_key)),
        heads_keep=settings["heads_keep"], ffn_keep=settings["ffn_keep"],
        positions=min(int(getattr(cfg, fam.max_positions_key)), t.max_length),
        token_types=int(getattr(cfg, "type_vocab_size", 0) or 0), labels=len(t.labels))
    n = layers.num_layers(teacher, t.family)
    q = ctx.target.quantize
    max_mb, speedup = settings["max_mb"], settings.get("min_speedup", 0.0)
    timed = _timed(settings)
    # A latency budget is what pruned widths are for; a size budget alone tries the profile's width.
    # Families that cannot prune heads (families.py `cannot`: MPNet) try the FFN widths only.
    widths = shape_search.widths(dims, prune=timed)
    if any(step == "head pruning" for step, _ in fam.cannot):
        widths = [w for w in widths if w[0] >= 1] or [(1.0, dims.ffn_keep)]
    # The profile's size gate bounds the files whatever --max-mb says: pipeline.build has already made the gate
    # the smaller of the two (targets.with_max_mb), so a --max-mb above the gate cannot pick a shape that the
    # gate then fails. Without --max-mb the profile's embedding rank is kept.
    size_limit = ctx.target.budget.max_size_mb
    by_gate = not max_mb or size_limit < max_mb  # which limit a no-fit line names
    tried_vocabs = shape_search.vocab_sizes(dims.vocab, [rows for rows in vocabs.specs if rows])
    shapes = shape_search.candidates(dims, n, size_limit, q.embedding_bits, q.embedding_block_size,
                                     widths_tried=widths, ranks=None if max_mb else (settings["embedding_rank"],),
                                     signatures=_signatures(ctx), vocabs=tried_vocabs)
    seq, threads = min(ctx.target.sequence_buckets), ctx.target.threads
    subsets, scores_of, svd_of = {}, {}, {}

    def subset(depth: int):
        if depth not in subsets:
            subsets[depth] = layer_choice.measured_layers(teacher, t.family, depth, score)
        return subsets[depth]

    def probe(s: shape_search.Shape):
        """The untrained candidate: the depth's best layer subset, pruned to the width, its vocabulary
        pruned (where the profile allows it), factorised."""
        model = layers.layer_subset(teacher, t.family, list(subset(s.layers)[0].layers))
        if s.heads_keep < 1 or s.ffn_keep < 1:
            if s.layers not in scores_of:
                ids, targets = importance
                batches = [list(range(i, min(i + 32, len(ids)))) for i in range(0, len(ids), 32)]
                scores_of[s.layers] = _importance(model, setup, ids, targets, batches)
            _prune_to(model, t.family, scores_of[s.layers], s.heads_keep, s.ffn_keep)
        if s.vocab:
            vocab.shrink_word_embeddings(model, t.family, vocabs.specs[s.vocab][0])
        if s.rank:
            if s.vocab not in svd_of:  # one SVD per vocabulary (its rows), shared by every rank
                svd_of[s.vocab] = embedding.TableSVD(layers.word_embeddings(model, t.family).weight.data)
            embedding.factorise_word_embeddings(model, t.family, s.rank, svd_of[s.vocab])
        return model.eval()

    def latency(s) -> float:
        return shape_search.onnx_latency_ms(wrap(probe(s), t.task, t.family, t.pooling), t.task, q, seq, threads)

    teacher_ms, max_ms = None, 0.0
    if timed:
        with reporter.task(f"timing the teacher and student shapes ({seq} tokens, ONNX)", total=None):
            teacher_ms = shape_search.onnx_latency_ms(wrap(teacher, t.task, t.family, t.pooling), t.task, q, seq, threads)
            # --min-speedup X: the teacher's time, measured just now beside the candidates, divided by X
            max_ms = min(settings.get("max_latency_ms") or float("inf"), teacher_ms / speedup if speedup else float("inf"))
            shapes = shape_search.deepest_within(shapes, latency, max_ms)
    what = " and ".join(x for x in (f"{size_limit:g} MB" if max_mb else "", f"{max_ms:.3g} ms" if max_ms else "") if x)
    measured, choices = [], {}
    with reporter.task(f"searching student shapes under {what}", total=len(shapes)) as bar:
        for s in shapes:
            if s.fits:
                ranked = subset(s.layers)
                value = ranked[0].score  # the full-width, full-table subset: already measured
                if s.rank or s.heads_keep < 1 or s.ffn_keep < 1 or s.vocab:
                    value = score_in(probe(s), s.vocab)
                s = dataclasses.replace(s, subset=tuple(ranked[0].layers), score=round(value, 5))
                choices[s.layers] = ranked
            measured.append(s)
            bar.advance(1)
    fitting = [s for s in measured if s.score is not None]
    if fitting and distil_ids:
        measured = _probe_training(measured, probe, teacher, setup, settings, score_in, distil_ids, probe_ids, reporter)
        fitting = [s for s in measured if s.score is not None]
    if not fitting:
        timed_ones = [s for s in measured if s.latency_ms is not None]  # the latency budget ruled them out
        smallest = (min(timed_ones, key=lambda s: s.latency_ms) if timed_ones
                    else min(measured, key=lambda s: s.estimated_mb))
        detail = f"about {smallest.estimated_mb:.1f} MB" + (f", {smallest.latency_ms:.2f} ms" if smallest.latency_ms else "")
        flags = " ".join(x for x in (f"[budget] max_size_mb {size_limit:g}" if by_gate else "",
                                     shape_search.budget_flags(None if by_gate else max_mb, settings.get("max_latency_ms"), speedup)) if x) \
            + (f" (the teacher took {teacher_ms:.2f} ms)" if speedup else "")  # --min-speedup comes last
        raise ModelError(f"{flags}: no student shape fits (the smallest, {smallest.layers} layer(s), "
                         f"{_width_text(smallest)}, embedding rank {smallest.rank}, is {detail})")
    # The best after the short distillation; untrained scores only rank shapes that were not distilled.
    best = max(fitting, key=lambda s: (s.trained_score is not None, s.trained_score if s.trained_score is not None else s.score))
    if timed and best.latency_ms is None:  # within the budget by the binary search; time it for the record
        best = dataclasses.replace(best, latency_ms=round(latency(best), 3))
        measured = [best if (m.layers, m.width, m.vocab) == (best.layers, best.width, best.vocab) else m for m in measured]
    return {
        "layers": list(best.subset), "rank": best.rank, "heads_keep": best.heads_keep, "ffn_keep": best.ffn_keep,
        "vocab": best.vocab,
        "layer_choice": _choice_record(choices[best.layers], n, t.task),
        "search": {"max_mb": max_mb or None, "max_latency_ms": settings.get("max_latency_ms"), "min_speedup": speedup or None,
                   "latency_budget_ms": round(max_ms, 4) if timed else None, "size_limit_mb": size_limit,
                   "probe_steps": PROBE_STEPS, "embedding_bits": q.embedding_bits,
                   "vocabularies": [rows or dims.vocab for rows in tried_vocabs], "teacher_vocab": dims.vocab,
                   "latency": {"format": "onnx", "tokens": seq, "threads": threads, "teacher_ms": round(teacher_ms, 3)}
                   if timed else None,
                   "chosen": best.as_dict(), "candidates": [s.as_dict() for s in measured],
                   "pareto": [s.as_dict() for s in shape_search.pareto(measured, by_latency=timed)]},
    }


def _probe_training(shapes, probe, teacher, setup, settings, score_in, distil_ids, probe_ids, reporter) -> list:
    """Re-rank the best candidates by a short distillation. Untrained scores over-rate a larger embedding
    rank against full width: training recovers the factorised table within ~100 steps, not pruned heads
    and neurons. On MiniLM (android-arm64, 1,500 steps, STS-B dev): under --max-mb 8 --max-latency-ms 0.59
    the untrained best (3 layers, 9/12 heads, FFN 384, rank 256) distilled to 96.2% of the teacher's
    Spearman; under --max-latency-ms 0.59, 2 full-width layers at rank 96 reached 96.9%, and after 100
    steps they scored 0.792 against 0.706-0.752 for the pruned shapes beside them. The PROBE_CANDIDATES best
    by untrained score, the best at full width and the best in the teacher's vocabulary each train PROBE_STEPS steps on the first
    PROBE_STEPS x batch distillation texts (rank 0 only) and are scored again on the held-out texts, each
    in its own vocabulary's token ids (`score_in`, `probe_ids`)."""
    fitting = sorted((s for s in shapes if s.score is not None), key=lambda s: -s.score)
    chosen = fitting[:PROBE_CANDIDATES]
    # The best at full width, and the best in the teacher's own vocabulary (a pruned vocabulary's larger rank
    # scores well untrained too, and on MiniLM trained worse in 100 steps: text splits into pieces it must
    # learn), always train as well, so neither is ruled out by an untrained score alone.
    for keep in (lambda s: s.width == (1.0, 1.0), lambda s: s.vocab == 0):
        best = next((s for s in fitting if keep(s)), None)
        if best is not None and best not in chosen:
            chosen.append(best)
    teacher_ids = distil_ids[: PROBE_STEPS * settings["batch_size"]]
    targets = train.teacher_outputs(teacher, setup, teacher_ids)
    trained = {}
    with reporter.task(f"distilling the {len(chosen)} best shapes {PROBE_STEPS} steps each", total=len(chosen)) as bar:
        for s in chosen:
            model = probe(s)
            curve = train.distil(model, setup, probe_ids(s.vocab), targets,
                                 budget=train.Budget(steps=PROBE_STEPS, eval_every=PROBE_STEPS),
                                 lr=settings["learning_rate"], batch_size=settings["batch_size"], seed=0,
                                 accel=train.LocalAccelerator(), evaluate=lambda m, rows=s.vocab: score_in(m, rows))
            trained[id(s)] = round(dict(curve.evals)[curve.best_step], 5)
            bar.advance(1)
    return [dataclasses.replace(s, trained_score=trained[id(s)]) if id(s) in trained else s for s in shapes]


def _width_text(s) -> str:
    return f"{s.heads_keep:.0%} of heads, {s.ffn_keep:.0%} of FFN"


def _importance(model, setup, ids, targets, batches) -> tuple:
    """Taylor importance (student/prune.py) of `model`'s heads and FFN neurons for the distillation loss
    on `batches` (lists of row indices into `ids` and `targets`)."""

    def loss_fn(m, index, head_mask):
        out = train.forward(m, setup, *train.collate(ids, index), head_mask=head_mask)
        return train.loss_terms(setup, out, {k: v[index] for k, v in targets.items()})

    return prune.importance_scores(model, setup.family, batches, loss_fn)


def _prune_to(model, family: str, scores: tuple, heads_keep: float, ffn_keep: float) -> dict:
    """Keep the shares `heads_keep` of heads and `ffn_keep` of FFN neurons with the highest `scores`."""
    head_scores, ffn_scores = scores
    n_heads, width = head_scores.shape[1], ffn_scores.shape[1]
    heads_kept, ffn_kept = prune.keep_count(n_heads, heads_keep), prune.keep_count(width, ffn_keep)
    removed = prune.prune_attention_heads(model, family, head_scores, heads_kept)
    prune.prune_ffn_neurons(model, family, ffn_scores, ffn_kept)
    return {"heads_kept": heads_kept, "heads_of": n_heads, "heads_removed": removed, "ffn_kept": ffn_kept, "ffn_of": width,
            "method": "gradient x activation (Taylor), uniform per layer"}


def _choice_record(ranked: list, teacher_layers: int, task: str) -> dict:
    """The report's account of a measured layer choice: the best candidates, and where the evenly
    spaced subset (the choice before issue #11) would have stood."""
    depth = len(ranked[0].layers)
    even = layers.pick_layers(teacher_layers, depth)
    even_score = next((c.score for c in ranked if list(c.layers) == even), None)
    metric = ("agreement with the teacher (minus 0.01 KL), untrained" if task == "text-classification"
              else "mean cosine to the teacher, untrained")
    return {"method": "measured", "scored": len(ranked), "metric": metric,
            "candidates": [{"layers": list(c.layers), "score": round(c.score, 5)} for c in ranked[:LISTED_CANDIDATES]],
            "evenly_spaced": {"layers": even, "score": None if even_score is None else round(even_score, 5)}}


def _agreement_noise(rows: int):
    """A classifier's held-out score is mostly the share of `rows` texts on which the student agrees with the teacher:
    its standard error, sqrt(p (1 - p) / rows), is the margin within which checkpoints cannot be told apart. The bench
    classifier (256 rows) kept step 550 of 1,000 at 0.945, 82.1% SST-2 dev accuracy; step 800 scored 0.941 (within
    0.014) and 84.6% (bench/exploration/classifier.md). Embedding scores are mean cosines, far less noisy: none."""
    return lambda best: share_standard_error(best, rows)


def _freeze_embedding_table(student, family: str, int4_block: int = 0) -> None:
    """The big lookup table stays as initialised (the teacher's rows, or their SVD factor): tokens the
    distillation text never shows keep vectors that match the rest of the table, and training skips
    most of the parameters. A factorised table's small projection does train. `int4_block`: the table is
    first put on the int4 grid the shipped files store it on (quant/int4.py), so the rest of the student
    learns around the table the device will have."""
    table = layers.word_embeddings(student, family)
    weight = table.lookup.weight if isinstance(table, embedding.LowRankEmbedding) else table.weight
    if int4_block and weight.shape[-1] % int4_block == 0:  # (a width it does not divide fails in the quantise stage, clearly)
        with torch.no_grad():
            weight.copy_(torch.from_numpy(int4.snap(weight.detach().float().cpu().numpy(), int4_block)).to(weight.dtype))
    weight.requires_grad_(False)


def _prune(student, setup, ids, targets, settings, seed, bar) -> dict:
    batches = train.make_batches(ids, settings["batch_size"], seed, epoch=99)[:SCORING_BATCHES]
    scores = _importance(student, setup, ids, targets, batches)
    bar.advance(SCORING_BATCHES * settings["batch_size"])
    return _prune_to(student, setup.family, scores, settings["heads_keep"], settings["ffn_keep"])


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
