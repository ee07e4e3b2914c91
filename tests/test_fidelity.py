"""Issue #11 on tiny seeded teachers: measured layer choice, low-rank embeddings that keep the whole
vocabulary, distillation that keeps its best checkpoint, budgets, and the size-driven shape search."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from click.testing import CliRunner

import edgepack
from edgepack.cli import main as cli_main
from edgepack.config import parse_budget
from edgepack.errors import UsageError
from edgepack.modeling import load_hf_model, wrap
from edgepack.student import embedding, layer_choice, layers, shape, train
from edgepack.testing import TINY_SENTENCES, tiny_target_toml
from edgepack.tokenizer import load_tokenizer, tokenizer_spec

FULL_VOCAB_STUDENT = """
[student]
strategy = "distil"
layers = 2
embedding_rank = 8
steps = 12
eval_every = 4
batch_size = 8
learning_rate = 1e-3
"""


@pytest.fixture(scope="session")
def full_vocab_build(session_dir, deep_tiny, distil_data):
    target = session_dir / "tiny-full-vocab.toml"
    target.write_text(tiny_target_toml(buckets=(16,), min_cosine_vs_student=0.98) + FULL_VOCAB_STUDENT, encoding="utf-8")
    out = session_dir / "bundle-full-vocab"
    ctx = edgepack.build(target=str(target), model=str(deep_tiny), data=(str(distil_data),), out=out,
                         cache_dir=session_dir / "fidelity-cache")
    return ctx, out


# -- layer choice ------------------------------------------------------------------------------------


def test_choose_layers_scores_every_subset_when_few_and_ranks_best_first():
    calls = []

    def score(subset):
        calls.append(tuple(subset))
        return -abs(sum(subset) - 7)  # best: subsets summing to 7

    ranked = layer_choice.choose_layers(6, 3, score)
    assert len(calls) == len(set(calls)) == 20  # C(6, 3), each once
    assert sum(ranked[0].layers) == 7 and ranked[0].score == 0
    assert [c.score for c in ranked] == sorted((c.score for c in ranked), reverse=True)


def test_choose_layers_uses_a_beam_search_when_there_are_too_many_subsets():
    best = (0, 5, 9, 11)

    def score(subset):
        return -len(set(best) ^ set(subset))  # closer to `best` is better, monotone in one-layer moves

    ranked = layer_choice.choose_layers(12, 4, score)  # C(12, 4) = 495 > the exhaustive limit
    assert ranked[0].layers == best


def test_subset_view_scores_without_copying_and_restores_the_teacher(deep_tiny):
    model = load_hf_model(deep_tiny, "sentence-embedding")
    before = [id(b) for b in model.encoder.layer]
    with layer_choice.subset_view(model, "bert", [0, 3]) as view:
        assert len(view.encoder.layer) == 2 and view.config.num_hidden_layers == 2
        assert id(view.encoder.layer[1]) == before[3]
    assert [id(b) for b in model.encoder.layer] == before and model.config.num_hidden_layers == 4


def test_build_records_the_measured_layer_choice(full_vocab_build):
    ctx, out = full_vocab_build
    info = ctx.student.info
    choice = info["layer_choice"]
    assert choice["method"] == "measured" and choice["scored"] == 6  # C(4, 2)
    scores = [c["score"] for c in choice["candidates"]]
    assert scores == sorted(scores, reverse=True)
    assert info["teacher_layers_kept"] == choice["candidates"][0]["layers"]
    report = (out / "report.md").read_text()
    assert "Layer choice" in report and str(choice["candidates"][0]["layers"]) in report


# -- low-rank embeddings, full vocabulary ------------------------------------------------------------


def test_svd_factors_are_the_best_low_rank_approximation():
    torch.manual_seed(0)
    table = torch.randn(50, 6) @ torch.randn(6, 16)  # rank 6
    a, b = embedding.svd_factors(table, 6)
    assert torch.allclose(a @ b, table, atol=1e-4)
    a3, b3 = embedding.svd_factors(table, 3)
    err = torch.linalg.matrix_norm(table - a3 @ b3)
    s = torch.linalg.svdvals(table)
    assert torch.isclose(err, s[3:].square().sum().sqrt(), rtol=1e-3)  # Eckart-Young


def test_factorised_student_saves_loads_and_exports(deep_tiny, tmp_path):
    model = load_hf_model(deep_tiny, "sentence-embedding")
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    mask = torch.ones_like(ids)
    embedding.factorise_word_embeddings(model, "bert", 8)
    assert embedding.rank_of(model) == 8
    model.save_pretrained(tmp_path / "s", safe_serialization=True)
    again = load_hf_model(tmp_path / "s", "sentence-embedding")
    assert isinstance(again.embeddings.word_embeddings, embedding.LowRankEmbedding)
    a = wrap(model.eval(), "sentence-embedding", "bert")(ids, mask)
    b = wrap(again, "sentence-embedding", "bert")(ids, mask)
    assert torch.allclose(a, b, atol=1e-6)


def test_default_style_student_tokenises_exactly_as_the_teacher(full_vocab_build, deep_tiny):
    ctx, out = full_vocab_build
    assert not ctx.student.vocab_pruned
    assert json.loads((out / "tokenizer.json").read_text()) == tokenizer_spec(deep_tiny)
    teacher_tok, bundle_tok = load_tokenizer(tokenizer_spec(deep_tiny)), load_tokenizer(json.loads((out / "tokenizer.json").read_text()))
    weird = ["naïve café ☕ 123", "UNSEEN-word", *TINY_SENTENCES]
    assert [e.ids for e in teacher_tok.encode_batch(weird)] == [e.ids for e in bundle_tok.encode_batch(weird)]
    assert ctx.student.info["embedding_rank"] == 8
    assert ctx.metrics["formats"]["onnx"]["vs_student_fp32"]["cosine_min"] >= 0.98
    assert edgepack.check(out).passed


# -- distillation never ends worse than it started ---------------------------------------------------


def _tiny_distillation(deep_tiny, lr: float, steps: int = 20, noise: float = 0.0, precision: str = "fp32", dropout: float = 0.0,
                       student_out: list | None = None):
    teacher = load_hf_model(deep_tiny, "sentence-embedding")
    student = layers.layer_subset(teacher, "bert", [0, 3])
    # A random tiny teacher's layers barely move its output: noise gives training something to recover.
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in student.encoder.parameters():
            p.add_(noise * torch.randn(p.shape, generator=gen))
    if student_out is not None:
        student_out.append(student)
    setup = train.Setup(task="sentence-embedding", family="bert", pooling="mean", max_length=32, precision=precision, dropout=dropout)
    tok = load_tokenizer(tokenizer_spec(deep_tiny))
    texts = [f"{a} and {b}" for a in TINY_SENTENCES for b in TINY_SENTENCES[:4]]
    ids = train.tokenize(tok, texts, 32)
    held, fit = ids[:8], ids[8:]
    targets = train.teacher_outputs(teacher, setup, fit)
    held_targets = train.teacher_outputs(teacher, setup, held)

    def score(m):
        return train.held_out_score(m, setup, held, held_targets)

    start = score(student)
    curve = train.distil(student, setup, fit, targets, budget=train.Budget(steps=steps, eval_every=5), lr=lr,
                         batch_size=8, seed=0, evaluate=score)
    return start, score(student), curve


def test_a_harmful_learning_rate_does_not_ship_a_student_worse_than_step_0(deep_tiny):
    start, end, curve = _tiny_distillation(deep_tiny, lr=50.0)
    assert curve.evals[0][0] == 0 and curve.evals[0][1] == pytest.approx(start)
    assert min(s for _, s in curve.evals[1:]) < start - 0.01  # the rate really did harm it
    assert end >= start - 1e-6  # ... and what is kept is no worse than the start
    assert curve.best_step == max(curve.evals, key=lambda e: e[1])[0]


def test_a_good_learning_rate_improves_and_keeps_the_best_step(deep_tiny):
    start, end, curve = _tiny_distillation(deep_tiny, lr=3e-3, steps=30, noise=0.3)
    assert end > start and curve.best_step > 0
    assert end == pytest.approx(max(s for _, s in curve.evals), abs=1e-5)


@pytest.mark.parametrize("scores, tolerance, kept", [
    ([0.80, 0.95, 0.94, 0.90, 0.945], None, 1),      # the best
    ([0.80, 0.95, 0.94, 0.90, 0.945], 0.014, 4),     # the latest within 0.014 of the best
    ([0.80, 0.95, 0.94, 0.90, 0.93], 0.014, 2),      # 0.93 is past the margin: the latest within it
    ([0.95, 0.96, 0.949, 0.90, 0.90], 0.02, 1),      # within the margin but below step 0: never
])
def test_with_a_noise_margin_the_latest_checkpoint_close_to_the_best_is_kept(deep_tiny, scores, tolerance, kept):
    """Classifiers (distil._agreement_noise): checkpoints within the held-out agreement's standard error of the best
    cannot be told apart, and the later one trained longer. The bench classifier kept step 550 of 1,000 at 0.945 and
    82.1% SST-2 dev accuracy; step 800 scored 0.941 and 84.6%. Never a checkpoint below step 0's score."""
    student = layers.layer_subset(load_hf_model(deep_tiny, "sentence-embedding"), "bert", [0, 3])
    setup = train.Setup(task="sentence-embedding", family="bert", pooling="mean", max_length=32)
    ids = train.tokenize(load_tokenizer(tokenizer_spec(deep_tiny)), TINY_SENTENCES[:16], 32)
    targets = train.teacher_outputs(student, setup, ids)
    marks, seen = iter(scores), []

    def score(m):  # the scripted held-out score; the weights' first value tells the kept checkpoint apart
        seen.append(m.encoder.layer[0].attention.self.query.weight.detach().clone())
        return next(marks)

    curve = train.distil(student, setup, ids, targets, budget=train.Budget(steps=4, eval_every=1), lr=1e-2, batch_size=8,
                         seed=0, evaluate=score, tolerance=(lambda best: tolerance) if tolerance else None)
    assert [s for _, s in curve.evals] == scores and curve.best_step == kept
    assert not torch.equal(seen[0], seen[-1])  # training moved the weights, so they tell checkpoints apart
    assert torch.equal(student.encoder.layer[0].attention.self.query.weight.detach(), seen[kept])  # the kept ones


def test_a_classifiers_noise_margin_is_the_standard_error_of_its_agreement():
    from edgepack.student.distil import _agreement_noise

    assert _agreement_noise(256)(0.945) == pytest.approx(0.01425, abs=1e-4)
    assert _agreement_noise(1024)(0.945) == pytest.approx(_agreement_noise(256)(0.945) / 2)


def _dropouts(model) -> set[float]:
    return {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)} | {
        m.dropout_prob for m in model.modules() if isinstance(getattr(m, "dropout_prob", None), float)}


@pytest.mark.parametrize("dropout", [0.0, 0.25])
def test_the_student_distils_at_the_profiles_dropout_and_keeps_the_teachers_config(deep_tiny, monkeypatch, dropout):
    """[student] dropout (issue #11): every dropout of the student (the modules and the SDPA attention's own
    probability) runs at the profile's value while it trains; 0, the default, makes a training step's forward
    pass deterministic. The saved config keeps the teacher's values."""
    teacher = load_hf_model(deep_tiny, "sentence-embedding")
    assert _dropouts(teacher) == {0.1} == {teacher.config.hidden_dropout_prob, teacher.config.attention_probs_dropout_prob}
    seen, deterministic = [], []
    real = train.forward

    def spy(model, setup, *args, **kwargs):
        if model.training:
            seen.append(_dropouts(model))
            with torch.no_grad():
                a, b = real(model, setup, *args, **kwargs), real(model, setup, *args, **kwargs)
            deterministic.append(torch.equal(a["embedding"], b["embedding"]))
        return real(model, setup, *args, **kwargs)

    monkeypatch.setattr(train, "forward", spy)
    students = []
    _tiny_distillation(deep_tiny, lr=3e-3, steps=6, dropout=dropout, student_out=students)
    assert seen and all(s == {dropout} for s in seen)
    assert set(deterministic) == {dropout == 0.0}
    assert (students[0].config.hidden_dropout_prob, students[0].config.attention_probs_dropout_prob) == (0.1, 0.1)


def test_dropout_is_a_profile_setting_in_the_students_cache_key():
    """android-arm64 distils embedding students without dropout and classifiers with MiniLM's 0.1 (measured,
    bench/exploration/dropout.md); the value is in the settings the student is cached under; out of [0, 1) is
    one clear error."""
    from types import SimpleNamespace

    from edgepack.config import BuildOptions
    from edgepack.errors import TargetError
    from edgepack.student.distil import plan_settings
    from edgepack.targets import load_target, parse_target

    arm64 = load_target("android-arm64")
    assert arm64.student_for("sentence-embedding").dropout == 0.0
    assert arm64.student_for("text-classification").dropout == 0.1
    base = 'name = "x"\nformats = ["onnx"]\n[student]\nstrategy = "distil"\n'
    ctx = SimpleNamespace(target=parse_target(base + "dropout = 0.2\n", "x.toml"), options=BuildOptions(),
                          teacher=SimpleNamespace(task="sentence-embedding", max_length=32))
    assert plan_settings(ctx, teacher_layers=4)["dropout"] == 0.2
    assert parse_target(base, "x.toml").student.dropout == 0.0
    for bad in ("1.0", "-0.1", '"none"'):
        with pytest.raises(TargetError, match=r"dropout' must be"):
            parse_target(base + f"dropout = {bad}\n", "x.toml")


def test_bf16_training_runs_the_students_products_in_bfloat16_and_still_improves(deep_tiny, monkeypatch):
    """[student] train_precision = "bf16": the student's forward pass runs under bfloat16 autocast, while its
    weights (and so what is saved and exported) stay float32, and held-out evaluation runs in float32."""
    seen = []
    real = train.forward

    def spy(model, setup, *args, **kwargs):  # the student keeps 2 of the teacher's layers (_tiny_distillation)
        seen.append((len(model.encoder.layer) == 2, model.training, torch.is_autocast_enabled("cpu")))
        return real(model, setup, *args, **kwargs)

    monkeypatch.setattr(train, "forward", spy)
    start, end, curve = _tiny_distillation(deep_tiny, lr=3e-3, steps=30, noise=0.3, precision="bf16")
    assert end > start and curve.best_step > 0
    assert {autocast for student, training, autocast in seen if student and training} == {True}  # every training step
    assert {autocast for student, training, autocast in seen if student and not training} == {False}  # every evaluation
    assert {autocast for student, _, autocast in seen if not student} == {True}  # the teacher's targets
    seen.clear()
    _tiny_distillation(deep_tiny, lr=3e-3, steps=5)  # the default, fp32: no autocast at all
    assert seen and not any(autocast for *_, autocast in seen)


def test_distillation_steps_with_the_fused_adamw(deep_tiny, monkeypatch):
    """The for-loop AdamW took 61-64 of a ~170 ms MiniLM-width step on 2 cores, the fused one 10.5-12.8 ms
    (bench/exploration/fused_adamw.md): distil() builds the fused one for float32 CPU weights."""
    made = []
    real = train.adamw

    def spy(params, lr):
        made.append(real(params, lr))
        return made[-1]

    monkeypatch.setattr(train, "adamw", spy)
    start, end, _ = _tiny_distillation(deep_tiny, lr=3e-3, steps=30, noise=0.3)
    assert end > start
    assert [o.defaults["fused"] for o in made] == [True]
    assert made[0].defaults["weight_decay"] == 0.01
    # Weights torch has no fused kernel for (here bfloat16 ones) get the for-loop AdamW, not an error.
    assert not train.adamw([torch.nn.Parameter(torch.zeros(4, dtype=torch.bfloat16))], 1e-3).defaults["fused"]


@pytest.mark.parametrize("native,expected", [(True, "bf16"), (False, "fp32")])
def test_auto_train_precision_is_bf16_only_where_the_hardware_has_it(monkeypatch, native, expected):
    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert train.bf16_native(cpu) is native
    assert train.resolve_precision("auto", cpu) == expected
    assert train.resolve_precision("fp32", cpu) == "fp32" and train.resolve_precision("bf16", cpu) == "bf16"


def test_train_precision_is_in_the_settings_the_student_is_cached_under(monkeypatch):
    """A bf16-trained student is another student: its settings (part of the cache key) say so. float32 adds
    no key, so students trained before the option keep their cache."""
    from types import SimpleNamespace

    from edgepack.config import BuildOptions
    from edgepack.student.distil import plan_settings
    from edgepack.targets import parse_target

    monkeypatch.setattr(train, "bf16_native", lambda device: True)

    def settings(precision):
        toml = 'name = "x"\nformats = ["onnx"]\n[student]\nstrategy = "distil"\n' + (f'train_precision = "{precision}"\n' if precision else "")
        target = parse_target(toml, "x.toml")
        ctx = SimpleNamespace(target=target, options=BuildOptions(), teacher=SimpleNamespace(task="sentence-embedding", max_length=32))
        return plan_settings(ctx, teacher_layers=4)

    assert "train_precision" not in settings(None) and "train_precision" not in settings("fp32")
    assert settings("auto")["train_precision"] == "bf16" == settings("bf16")["train_precision"]


def test_bf16_teacher_targets_stay_close_to_float32_and_are_cached_apart(deep_tiny):
    from edgepack.cache import hash_parts

    teacher = load_hf_model(deep_tiny, "sentence-embedding")
    fp32 = train.Setup(task="sentence-embedding", family="bert", pooling="mean", max_length=32)
    bf16 = train.Setup(task="sentence-embedding", family="bert", pooling="mean", max_length=32, precision="bf16")
    ids = train.tokenize(load_tokenizer(tokenizer_spec(deep_tiny)), list(TINY_SENTENCES), 32)
    a, b = train.teacher_outputs(teacher, fp32, ids)["embedding"], train.teacher_outputs(teacher, bf16, ids)["embedding"]
    assert b.dtype == torch.float32 and not torch.equal(a, b)  # really computed in bfloat16 ...
    assert float(torch.nn.functional.cosine_similarity(a, b, dim=-1).min()) > 0.999  # ... and still the teacher's
    texts = list(TINY_SENTENCES)
    assert train.teacher_cache_key("h", fp32, texts) != train.teacher_cache_key("h", bf16, texts)
    # float32 targets keep the key they had before the option, so existing caches stay valid
    assert train.teacher_cache_key("h", fp32, texts) == hash_parts("teacher-outputs-v1", "h", "sentence-embedding", "mean", 32, texts)


def test_the_report_says_when_the_student_trained_in_bf16():
    from edgepack.report.markdown import student_markdown

    phase = {"steps": 2, "stopped": "budget", "evals": [[0, 0.5], [2, 0.6]], "best_score": 0.6, "best_step": 2}
    info = {"distillation": {"distilled_texts": 10, "held_out_texts": 4, "budget": {"steps": 2, "eval_every": 2}, "phases": [phase]}}
    said = "matrix products in bfloat16"
    assert said not in "\n".join(student_markdown({**info, "settings": {}}))
    assert said in "\n".join(student_markdown({**info, "settings": {"train_precision": "bf16"}}))


def test_patience_stops_early(deep_tiny):
    _, _, curve = _tiny_distillation(deep_tiny, lr=50.0, steps=200)
    assert len(curve.losses) == 200  # no patience: the whole budget runs
    teacher = load_hf_model(deep_tiny, "sentence-embedding")
    student = layers.layer_subset(teacher, "bert", [0, 3])
    setup = train.Setup(task="sentence-embedding", family="bert", pooling="mean", max_length=32)
    ids = train.tokenize(load_tokenizer(tokenizer_spec(deep_tiny)), list(TINY_SENTENCES) * 4, 32)
    targets = train.teacher_outputs(teacher, setup, ids)
    scores = iter([1.0] + [0.0] * 100)
    curve = train.distil(student, setup, ids, targets, budget=train.Budget(steps=200, eval_every=2, patience=3),
                         lr=1e-3, batch_size=8, seed=0, evaluate=lambda m: next(scores))
    assert curve.stopped == "early-stop" and len(curve.losses) == 6 and curve.best_step == 0


def test_a_time_budget_stops_training_when_time_runs_out(deep_tiny):
    teacher = load_hf_model(deep_tiny, "sentence-embedding")
    student = layers.layer_subset(teacher, "bert", [0, 3])
    setup = train.Setup(task="sentence-embedding", family="bert", pooling="mean", max_length=32)
    ids = train.tokenize(load_tokenizer(tokenizer_spec(deep_tiny)), list(TINY_SENTENCES) * 4, 32)
    targets = train.teacher_outputs(teacher, setup, ids)
    curve = train.distil(student, setup, ids, targets, budget=train.Budget(steps=10**9, seconds=0.5, eval_every=5),
                         lr=1e-3, batch_size=8, seed=0, evaluate=lambda m: 0.0)
    assert curve.stopped == "time" and 0 < len(curve.losses) < 10**6


def test_lr_schedule_warms_up_then_decays_to_zero():
    assert train.lr_factor(0.0) < 0.1 and train.lr_factor(0.06) == pytest.approx(1.0)
    assert train.lr_factor(0.5) > train.lr_factor(0.9) > train.lr_factor(1.0) == 0.0


@pytest.mark.parametrize("text,expected", [("600", (600, 0.0)), ("600steps", (600, 0.0)), ("90s", (0, 90.0)),
                                           ("10m", (0, 600.0)), ("1.5h", (0, 5400.0))])
def test_parse_budget(text, expected):
    assert parse_budget(text) == expected


@pytest.mark.parametrize("text", ["", "ten minutes", "0", "-5m", "2.5"])
def test_bad_budget_is_a_usage_error(text):
    with pytest.raises(UsageError):
        parse_budget(text)


def test_cli_bad_budget_is_one_line_exit_2(tmp_path):
    result = CliRunner().invoke(cli_main, ["build", "--budget", "soon", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--budget" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_build_records_the_distillation_curve(full_vocab_build):
    ctx, out = full_vocab_build
    phase = ctx.student.info["distillation"]["phases"][0]
    assert phase["evals"][0][0] == 0 and phase["steps"] == 12
    assert [s for s, _ in phase["evals"]] == [0, 4, 8, 12]
    assert phase["best_score"] == max(v for _, v in phase["evals"])
    assert "Distillation" in (out / "report.md").read_text()


# -- the size-driven shape search --------------------------------------------------------------------

DIMS = shape.Dimensions(vocab=30522, hidden=384, ffn=1536, heads_keep=1.0, ffn_keep=1.0, positions=256, token_types=2, labels=0)


def test_size_estimate_grows_with_depth_and_rank():
    assert shape.estimate_mb(DIMS, 3, 128) < shape.estimate_mb(DIMS, 4, 128) < shape.estimate_mb(DIMS, 4, 192)
    assert shape.estimate_mb(DIMS, 3, 128, embedding_bits=4) < shape.estimate_mb(DIMS, 3, 128)
    # the teacher itself in int8 is ~23 MB (bench/results): the estimate must be in that range
    assert 21 < shape.estimate_mb(DIMS, 6, 0) < 26


def test_candidates_take_the_largest_rank_that_fits():
    shapes = shape.candidates(DIMS, 6, 8.0, embedding_bits=4)
    assert [s.layers for s in shapes] == [6, 5, 4, 3, 2, 1]
    for s in shapes:
        assert (s.estimated_mb <= 8.0) == s.fits
    fits = {s.layers: s for s in shapes if s.fits}
    assert 3 in fits and 6 not in fits
    # ranks of an int4 table come in blocks of 32 (rank 112 is never a candidate)
    bigger = [r for r in (0, *shape.RANKS) if r % 32 == 0 and (r > fits[3].rank or (r == 0 and fits[3].rank))]
    assert all(shape.estimate_mb(DIMS, 3, r, 4) > 8.0 for r in bigger)


def test_size_estimate_counts_what_each_tflite_signature_repeats():
    """A .tflite repeats each signature's quantisation parameters. The default student (3 layers, rank 96,
    int4 table) measured 7.87 MB as a 4-signature .tflite and 7.44 MB as ONNX (bench/results/fidelity.md).
    Estimated at 7.74 MB before, `--max-mb 7.8` chose it and shipped the 7.87 MB file."""
    one, four = shape.estimate_mb(DIMS, 3, 96, 4), shape.estimate_mb(DIMS, 3, 96, 4, signatures=4)
    assert 7.44 <= one < four
    assert 7.87 <= four <= 8.0  # still the largest rank that fits --max-mb 8, as the profile ships it
    assert shape.estimate_mb(DIMS, 3, 128, 4, signatures=4) > 8.0
    shapes = shape.candidates(DIMS, 6, 8.0, embedding_bits=4, signatures=4)
    assert {s.layers: s.rank for s in shapes if s.fits}[3] == 96


def test_int4_tables_take_ranks_that_are_whole_blocks():
    for s in shape.candidates(DIMS, 6, 8.0, embedding_bits=4, block=32):
        assert s.rank % 32 == 0
    # an int8 table takes any rank: at 7.5 MB the largest that fit are 48 (3 layers) and 112 (2 layers)
    assert any(s.rank % 32 for s in shape.candidates(DIMS, 6, 7.5, embedding_bits=8))


def test_pareto_keeps_only_undominated_shapes():
    s = [shape.Shape(3, 64, 5.0, True, score=0.7), shape.Shape(3, 128, 7.0, True, score=0.8),
         shape.Shape(4, 32, 7.5, True, score=0.75), shape.Shape(2, 0, 9.0, False)]
    assert [(x.layers, x.rank) for x in shape.pareto(s)] == [(3, 64), (3, 128)]


def assert_probed_then_chosen(search: dict) -> None:
    """The search's rule: the best few by untrained score (and the best at full width) are distilled
    briefly, and the best of those after it is the shape built."""
    from edgepack.student import distil

    measured = sorted((c for c in search["candidates"] if c["score"] is not None), key=lambda c: -c["score"])
    probed = [c for c in measured if c["trained_score"] is not None]
    assert measured[0] in probed and 1 <= len(probed) <= distil.PROBE_CANDIDATES + 2
    full = [c for c in measured if (c["heads_keep"], c["ffn_keep"]) == (1.0, 1.0)]
    assert not full or full[0] in probed
    teachers = [c for c in measured if not c.get("vocab")]  # the best that keeps the teacher's tokenizer
    assert not teachers or teachers[0] in probed
    assert search["chosen"]["trained_score"] == max(c["trained_score"] for c in probed)
    assert all(c["trained_score"] >= c["score"] - 1e-6 for c in probed)  # the probe keeps its best step, 0 included


def test_max_mb_build_picks_a_fitting_shape_and_reports_the_table(session_dir, deep_tiny, distil_data, tmp_path):
    target = tmp_path / "t.toml"
    target.write_text(tiny_target_toml(formats=("onnx",), buckets=(16,), min_cosine_vs_student=0.95)
                      + FULL_VOCAB_STUDENT.replace("embedding_rank = 8", "embedding_rank = 0"), encoding="utf-8")
    dims_budget = 0.11  # MB: the tiny 4-layer teacher is estimated at 0.13 MB in int8, so something must give
    ctx = edgepack.build(target=str(target), model=str(deep_tiny), data=(str(distil_data),), out=tmp_path / "b",
                         cache_dir=session_dir / "fidelity-cache", max_mb=dims_budget)
    search = ctx.student.info["shape_search"]
    chosen = search["chosen"]
    assert chosen["fits"] and chosen["estimated_mb"] <= dims_budget
    measured = [c for c in search["candidates"] if c["score"] is not None]
    assert measured and all(c["fits"] and c["estimated_mb"] <= dims_budget for c in measured)  # only fitting shapes are scored
    assert_probed_then_chosen(search)
    assert chosen["layers"] < 4 and ctx.student.info["teacher_layers_kept"] == chosen["subset"]
    assert "Shape search" in (tmp_path / "b" / "report.md").read_text()


def test_max_mb_above_the_profiles_gate_searches_under_the_gate(session_dir, deep_tiny, distil_data, tmp_path):
    """`--max-mb 50` on a profile whose gate is 0.11 MB: the search keeps to 0.11 MB. It searched up to 50,
    picked the 0.13 MB 4-layer shape, and the gate then failed the build."""
    target = tmp_path / "t.toml"
    target.write_text(tiny_target_toml(formats=("onnx",), buckets=(16,), min_cosine_vs_student=0.95, max_size_mb=0.11)
                      + FULL_VOCAB_STUDENT.replace("embedding_rank = 8", "embedding_rank = 0"), encoding="utf-8")
    ctx = edgepack.build(target=str(target), model=str(deep_tiny), data=(str(distil_data),), out=tmp_path / "b",
                         cache_dir=session_dir / "fidelity-cache", max_mb=50)
    search = ctx.student.info["shape_search"]
    assert search["size_limit_mb"] == 0.11 and search["chosen"]["estimated_mb"] <= 0.11
    result = cli_build(tmp_path, tiny_target_toml(formats=("onnx",), buckets=(16,), max_size_mb=0.05) + FULL_VOCAB_STUDENT,
                       deep_tiny, distil_data, "--max-mb", "50", cache_dir=session_dir / "fidelity-cache")
    assert result.exit_code == 2, result.output  # and a no-fit line names the limit that bound it, not --max-mb 50
    assert "[budget] max_size_mb 0.05: no student shape fits" in result.output and "Traceback" not in result.output


def test_max_mb_is_a_gate_too_when_the_estimate_misses(deep_tiny, distil_data, tmp_path, monkeypatch):
    """`--max-mb` is the user's size budget: a file over it fails the build in one line (exit 1, --out left
    alone), even when the shape search's estimate said the shape fits. Here every estimate says 0.01 MB."""
    from edgepack.targets import load_target, with_max_mb

    target = tmp_path / "t.toml"
    target.write_text(tiny_target_toml(formats=("onnx",), buckets=(16,), max_size_mb=50)
                      + FULL_VOCAB_STUDENT.replace("embedding_rank = 8", "embedding_rank = 0"), encoding="utf-8")
    profile = load_target(str(target))
    assert with_max_mb(profile, 0.1).budget.max_size_mb == 0.1
    assert with_max_mb(profile, None) is profile and with_max_mb(profile, 80) is profile  # never looser than the profile
    monkeypatch.setattr(shape, "estimate_mb", lambda *a, **k: 0.01)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "previous.txt").write_text("the previous bundle", encoding="utf-8")
    result = cli_build(tmp_path, target.read_text(encoding="utf-8"), deep_tiny, distil_data, "--max-mb", "0.1", "--force")
    assert result.exit_code == 1, result.output
    assert "onnx: model file" in result.output and "> max_size_mb 0.1" in result.output and "Traceback" not in result.output
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["previous.txt"]


def cli_build(tmp_path, profile: str, model, data, *flags, cache_dir=None):
    """`edgepack build` through the CLI with `profile` written to tmp_path; the click result."""
    target = tmp_path / "t.toml"
    target.write_text(profile, encoding="utf-8")
    return CliRunner().invoke(cli_main, ["build", "--target", str(target), "--model", str(model), "--data", str(data),
                                         "--out", str(tmp_path / "b"), "--cache-dir", str(cache_dir or tmp_path / "c"), *flags])


def test_max_mb_that_nothing_fits_is_one_clear_error(deep_tiny, distil_data, tmp_path, session_dir):
    result = cli_build(tmp_path, tiny_target_toml(formats=("onnx",), buckets=(16,)) + FULL_VOCAB_STUDENT, deep_tiny,
                       distil_data, "--max-mb", "0.05", cache_dir=session_dir / "fidelity-cache")
    assert result.exit_code == 2, result.output
    assert "--max-mb" in result.output and "no student shape fits" in result.output and "Traceback" not in result.output


def test_widths_start_with_the_profiles_and_add_the_grid_only_for_pruning():
    own = shape.Dimensions(**{**DIMS.__dict__, "heads_keep": 0.75, "ffn_keep": 0.5})
    assert shape.widths(own, prune=False) == [(0.75, 0.5)]
    grid = shape.widths(own, prune=True)
    assert grid[0] == (0.75, 0.5) and len(grid) == len(set(grid)) == len(shape.HEAD_KEEPS) * len(shape.FFN_KEEPS)
    sized = shape.candidates(DIMS, 6, 100.0, embedding_bits=4, widths_tried=shape.widths(DIMS, True), ranks=(96,))
    full = {s.layers: s.estimated_mb for s in sized if s.width == (1.0, 1.0)}
    half = {s.layers: s.estimated_mb for s in sized if s.width == (0.5, 0.5)}
    assert all(half[d] < full[d] for d in full) and all(s.rank == 96 for s in sized)


def test_latency_search_finds_the_deepest_shape_of_each_width_within_the_budget():
    """A binary search over depths per width: only a few shapes are timed, deeper ones than one over the
    budget are marked not fitting, and every timed one carries its latency."""
    shapes = shape.candidates(DIMS, 6, 100.0, embedding_bits=4, widths_tried=[(1.0, 1.0), (0.5, 0.25)], ranks=(96,))
    timed = []

    def fake_ms(s):  # cost grows with depth, less for the narrow width
        timed.append((s.layers, s.width))
        return s.layers * (1.0 if s.width == (1.0, 1.0) else 0.4)

    out = shape.deepest_within(shapes, fake_ms, budget_ms=2.5)
    fits = {(s.layers, s.width) for s in out if s.fits}
    assert max(d for d, w in fits if w == (1.0, 1.0)) == 2 and max(d for d, w in fits if w == (0.5, 0.25)) == 6
    assert (3, (1.0, 1.0)) not in fits and len(timed) <= 2 * 4 and len(set(timed)) == len(timed)
    assert all(s.latency_ms is not None for s in out if (s.layers, s.width) in timed)
    assert shape.deepest_within(shapes, fake_ms, budget_ms=0.1) and not any(
        s.fits for s in shape.deepest_within(shapes, fake_ms, budget_ms=0.1))


def test_pareto_by_latency_uses_the_timed_shapes_only():
    s = [shape.Shape(3, 96, 7.0, True, score=0.8, latency_ms=1.0), shape.Shape(2, 96, 6.0, True, score=0.7, latency_ms=0.7),
         shape.Shape(3, 96, 5.0, True, score=0.6, latency_ms=1.2, heads_keep=0.5), shape.Shape(1, 96, 5.0, True, score=0.5)]
    assert [(x.layers, x.heads_keep) for x in shape.pareto(s, by_latency=True)] == [(2, 1.0), (3, 1.0)]


def test_max_latency_build_times_candidates_and_reports_them(session_dir, deep_tiny, distil_data, tmp_path):
    """A latency budget every shape meets: the report's table holds the measured latencies of pruned and
    full-width candidates, beside the teacher's."""
    target = tmp_path / "t.toml"
    target.write_text(tiny_target_toml(formats=("onnx",), buckets=(16,), min_cosine_vs_student=0.95)
                      + FULL_VOCAB_STUDENT, encoding="utf-8")
    ctx = edgepack.build(target=str(target), model=str(deep_tiny), data=(str(distil_data),), out=tmp_path / "b",
                         cache_dir=session_dir / "fidelity-cache", max_latency_ms=1000.0)
    search = ctx.student.info["shape_search"]
    assert search["max_latency_ms"] == 1000.0 and search["latency"]["teacher_ms"] > 0
    timed = [c for c in search["candidates"] if c["latency_ms"] is not None]
    assert {(c["heads_keep"], c["ffn_keep"]) for c in timed} == set(shape.widths(
        shape.Dimensions(1, 1, 1, 1.0, 1.0, 1, 0, 0), prune=True))  # every width timed at least once
    chosen = search["chosen"]
    assert chosen["fits"] and chosen["latency_ms"] <= 1000.0 and chosen["rank"] == 8
    assert_probed_then_chosen(search)
    report = (tmp_path / "b" / "report.md").read_text()
    assert "--max-latency-ms 1000" in report and "vs teacher" in report


def test_a_classifier_latency_search_times_its_logits_graph(tiny_classifier, tiny_labelled_data, tmp_path):
    """Classifier heads go through the same export, quantisation and timing (their graph ends in logits)."""
    profile = tiny_target_toml(formats=("onnx",), buckets=(16,)) + FULL_VOCAB_STUDENT.replace("layers = 2", "layers = 1")
    result = cli_build(tmp_path, profile, tiny_classifier, tiny_labelled_data, "--max-latency-ms", "1000")
    assert result.exit_code == 0, result.output
    student = json.loads((tmp_path / "b" / "edgepack.json").read_text())["student"]
    assert student["shape_search"]["latency"]["teacher_ms"] > 0 and student["shape_search"]["chosen"]["latency_ms"] > 0


def test_max_latency_build_prunes_the_student_to_the_chosen_width(session_dir, deep_tiny, distil_data, tmp_path,
                                                                 monkeypatch):
    """With a latency that only narrow students meet (a stand-in clock: real timings of tiny models are
    noise), the build picks a pruned width and the shipped student has those heads and neurons."""
    def fake_ms(head, task, spec, seq, threads=1, reps=0):
        cfg = head.model.config
        heads = cfg.num_attention_heads - len((cfg.pruned_heads or {}).get(0, ()))
        return cfg.num_hidden_layers * (heads / cfg.num_attention_heads + cfg.intermediate_size / 64)

    monkeypatch.setattr(shape, "onnx_latency_ms", fake_ms)
    target = tmp_path / "t.toml"
    target.write_text(tiny_target_toml(formats=("onnx",), buckets=(16,), min_cosine_vs_student=0.95)
                      + FULL_VOCAB_STUDENT, encoding="utf-8")
    ctx = edgepack.build(target=str(target), model=str(deep_tiny), data=(str(distil_data),), out=tmp_path / "b",
                         cache_dir=tmp_path / "c", max_latency_ms=1.9)
    chosen = ctx.student.info["shape_search"]["chosen"]
    assert chosen["latency_ms"] <= 1.9 and (chosen["heads_keep"], chosen["ffn_keep"]) != (1.0, 1.0)
    student = load_hf_model(ctx.student.dir, "sentence-embedding")
    assert student.config.num_hidden_layers == chosen["layers"]
    assert ctx.student.info["ffn"] == round(64 * chosen["ffn_keep"])
    assert ctx.student.info["pruning"]["heads_kept"] == round(4 * chosen["heads_keep"])


def test_min_speedup_is_a_latency_budget_relative_to_the_teacher(deep_tiny, distil_data, tmp_path, monkeypatch):
    """--min-speedup X: the budget is the teacher's latency, timed in the same search, divided by X (here the
    stand-in clock gives the teacher 8 and full-width layers 2 each: X = 4.2 leaves 1.9, which only
    narrow students meet); a speed-up no shape reaches is one line naming the teacher's time."""
    def fake_ms(head, task, spec, seq, threads=1, reps=0):
        cfg = head.model.config
        heads = cfg.num_attention_heads - len((cfg.pruned_heads or {}).get(0, ()))
        return cfg.num_hidden_layers * (heads / cfg.num_attention_heads + cfg.intermediate_size / 64)

    monkeypatch.setattr(shape, "onnx_latency_ms", fake_ms)
    profile = tiny_target_toml(formats=("onnx",), buckets=(16,), min_cosine_vs_student=0.95) + FULL_VOCAB_STUDENT
    result = cli_build(tmp_path, profile, deep_tiny, distil_data, "--min-speedup", "4.2")
    assert result.exit_code == 0, result.output
    search = json.loads((tmp_path / "b" / "edgepack.json").read_text())["student"]["shape_search"]
    assert search["min_speedup"] == 4.2 and search["latency_budget_ms"] == pytest.approx(8 / 4.2, abs=1e-3)
    assert search["chosen"]["latency_ms"] <= 8 / 4.2 and (search["chosen"]["heads_keep"], search["chosen"]["ffn_keep"]) != (1.0, 1.0)
    assert "--min-speedup 4.2" in (tmp_path / "b" / "report.md").read_text()
    again = tmp_path / "again"
    again.mkdir()
    result = cli_build(again, profile, deep_tiny, distil_data, "--min-speedup", "100")
    assert result.exit_code == 2 and "--min-speedup 100 (the teacher took 8.00 ms): no student shape fits" in result.output
    assert "Traceback" not in result.output


def test_max_latency_that_nothing_meets_is_one_clear_error(deep_tiny, distil_data, tmp_path, session_dir, monkeypatch):
    monkeypatch.setattr(shape, "onnx_latency_ms", lambda *a, **k: 5.0)
    result = cli_build(tmp_path, tiny_target_toml(formats=("onnx",), buckets=(16,)) + FULL_VOCAB_STUDENT, deep_tiny,
                       distil_data, "--max-latency-ms", "1")
    assert result.exit_code == 2, result.output
    assert "--max-latency-ms 1" in result.output and "no student shape fits" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "b").exists()


def test_a_latency_budget_keeps_to_the_profiles_size_gate(deep_tiny, distil_data, tmp_path, monkeypatch):
    """Without --max-mb the candidates must still fit the profile's max_size_mb (estimated): shapes over it
    are never exported or timed, and when none is left the build says which limit it was."""
    timed = []
    monkeypatch.setattr(shape, "onnx_latency_ms", lambda head, *a, **k: timed.append(head) or 0.01)
    result = cli_build(tmp_path, tiny_target_toml(formats=("onnx",), buckets=(16,), max_size_mb=0.05) + FULL_VOCAB_STUDENT,
                       deep_tiny, distil_data, "--max-latency-ms", "1000")
    assert result.exit_code == 2, result.output
    assert "[budget] max_size_mb 0.05 --max-latency-ms 1000: no student shape fits" in result.output
    assert len(timed) == 1  # the teacher, for the table; no candidate


def test_a_shape_budget_distils_a_student_even_when_the_profile_ships_the_teacher(deep_tiny, distil_data, tmp_path):
    """`--max-mb` on a profile with `strategy = "teacher"` (like x86-64) asks for a smaller model: the
    build distils one (as --student-layers does) instead of ignoring the flag."""
    target = tmp_path / "t.toml"
    target.write_text(tiny_target_toml(formats=("onnx",), buckets=(16,), min_cosine_vs_student=0.9)
                      + "[student]\nsteps = 8\neval_every = 4\nbatch_size = 8\n", encoding="utf-8")
    ctx = edgepack.build(target=str(target), model=str(deep_tiny), data=(str(distil_data),), out=tmp_path / "b",
                         cache_dir=tmp_path / "c", max_mb=0.11)
    assert not ctx.student.is_teacher and ctx.student.info["shape_search"]["chosen"]["estimated_mb"] <= 0.11


def test_a_profile_that_prunes_the_vocabulary_makes_it_a_dimension_of_the_search(session_dir, deep_tiny, distil_data, tmp_path):
    """With `vocab_prune = true` and `--max-mb`, the search tries the teacher's vocabulary and VOCAB_KEEPS of
    it, each with the largest rank that fits, scores each in its own token ids, and builds the one it picks:
    the bundle's tokenizer has the chosen vocabulary's rows. (Before, such a build was refused.)"""
    budget = 0.11
    result = cli_build(tmp_path, tiny_target_toml(formats=("onnx",), buckets=(16,), min_cosine_vs_student=0.95)
                       + FULL_VOCAB_STUDENT.replace("embedding_rank = 8", "embedding_rank = 0") + "vocab_prune = true\n",
                       deep_tiny, distil_data, "--max-mb", str(budget), cache_dir=session_dir / "fidelity-cache")
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "b" / "report.json").read_text(encoding="utf-8"))["student"]
    search = info["shape_search"]
    teacher_rows = len(tokenizer_spec(deep_tiny)["model"]["vocab"])
    assert search["teacher_vocab"] == teacher_rows and search["vocabularies"][0] == teacher_rows
    # the teacher's, then the smaller plans once each (VOCAB_KEEPS and the profile's; plans that come out equal are one)
    assert 3 <= len(search["vocabularies"]) <= 2 + len(shape.VOCAB_KEEPS)
    pruned = search["vocabularies"][1:]
    assert sorted(set(pruned), reverse=True) == pruned and max(pruned) < teacher_rows
    by_vocab = {}
    for c in search["candidates"]:
        by_vocab.setdefault(c["vocab"], []).append(c)
    assert set(by_vocab) == {0, *search["vocabularies"][1:]}
    # the same depth in fewer rows is smaller at the same rank, so it fits at least as large a rank
    for c in by_vocab[0]:
        for rows in search["vocabularies"][1:]:
            other = next(o for o in by_vocab[rows] if o["layers"] == c["layers"])
            assert other["fits"] or not c["fits"]
            if c["fits"] and c["rank"]:
                assert other["rank"] == 0 or other["rank"] >= c["rank"]
    measured = [c for c in search["candidates"] if c["score"] is not None]
    assert {c["vocab"] for c in measured} == set(by_vocab)  # every vocabulary was scored, in its own ids
    assert all(c["fits"] and c["estimated_mb"] <= budget for c in measured)
    assert_probed_then_chosen(search)
    chosen = search["chosen"]
    rows = len(tokenizer_spec(tmp_path / "b")["model"]["vocab"])
    assert rows == (chosen["vocab"] or teacher_rows) and info["vocab_size"] == rows
    assert info["vocab_pruned"] == bool(chosen["vocab"]) and info["layer_choice"]["method"] == "measured"
    report = (tmp_path / "b" / "report.md").read_text(encoding="utf-8")
    assert "| vocabulary |" in report and "were candidates too" in report

    # A budget that the teacher's vocabulary misses at every depth: the student built has a pruned one.
    one = next(c for c in search["candidates"] if c["layers"] == 1 and c["vocab"] == search["vocabularies"][-1])
    assert all(c["estimated_mb"] > one["estimated_mb"] for c in by_vocab[0])
    shutil.rmtree(tmp_path / "b")
    result = cli_build(tmp_path, (tmp_path / "t.toml").read_text(encoding="utf-8"), deep_tiny, distil_data,
                       "--max-mb", str(one["estimated_mb"]), cache_dir=session_dir / "fidelity-cache")
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "b" / "report.json").read_text(encoding="utf-8"))["student"]
    chosen = info["shape_search"]["chosen"]
    assert chosen["vocab"] in search["vocabularies"][1:] and chosen["estimated_mb"] <= one["estimated_mb"] and info["vocab_pruned"]
    assert len(tokenizer_spec(tmp_path / "b")["model"]["vocab"]) == chosen["vocab"] == info["vocab_size"]
    assert info["vocab_coverage"]["texts"] > 0  # the pruned vocabulary's tokenisation is reported


def test_a_pruned_vocabulary_without_a_budget_measures_its_layers(session_dir, deep_tiny, distil_data, tmp_path):
    """Layer subsets are scored in the teacher's token ids, so a profile that prunes the vocabulary gets
    the measured layer choice too (it got evenly spaced layers before) and its own planned vocabulary."""
    result = cli_build(tmp_path, tiny_target_toml(formats=("onnx",), buckets=(16,), min_cosine_vs_student=0.95)
                       + FULL_VOCAB_STUDENT + "vocab_prune = true\nvocab_size = 120\n",
                       deep_tiny, distil_data, cache_dir=session_dir / "fidelity-cache")
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "b" / "report.json").read_text(encoding="utf-8"))["student"]
    assert info["layer_choice"]["method"] == "measured" and info["layer_choice"]["scored"] == 6  # C(4, 2)
    assert info["vocab_pruned"] and info["vocab_size"] == len(tokenizer_spec(tmp_path / "b")["model"]["vocab"]) == 120  # of 161
    assert info["shape_search"] is None


def test_vocab_sizes_keep_the_teachers_first_and_only_smaller_plans_once():
    assert shape.vocab_sizes(1000, [500, 400, 500, 1000, 1200, 0]) == [0, 500, 400]
    assert shape.vocab_sizes(1000, []) == [0]


def test_fewer_vocabulary_rows_buy_a_larger_rank_at_the_same_depth():
    shapes = shape.candidates(DIMS, 6, 8.0, embedding_bits=4, block=32, vocabs=(0, 15261, 7630))
    fit = {(s.layers, s.vocab): s for s in shapes}
    assert len(shapes) == 6 * 3 and fit[(3, 0)].rank == 96 and fit[(3, 0)].fits
    assert fit[(3, 15261)].rank in (0, *[r for r in shape.RANKS if r > 96])  # 0: the full-width table
    assert fit[(3, 7630)].estimated_mb <= 8.0 and fit[(3, 7630)].rank in (0, *[r for r in shape.RANKS if r >= fit[(3, 15261)].rank])
    assert all(s.vocab in (0, 15261, 7630) for s in shapes)


def test_latency_search_times_each_depth_once_for_every_vocabulary():
    shapes = shape.candidates(DIMS, 6, 100.0, embedding_bits=4, widths_tried=[(1.0, 1.0)], ranks=(96,), vocabs=(0, 8000))
    timed = []

    def fake_ms(s):
        timed.append(s.layers)
        return float(s.layers)

    out = shape.deepest_within(shapes, fake_ms, budget_ms=2.5)
    assert len(timed) == len(set(timed)) <= 4  # one export per depth, not per vocabulary
    for depth in set(timed):
        same = [s for s in out if s.layers == depth]
        assert len(same) == 2 and len({(s.latency_ms, s.fits) for s in same}) == 1
    assert {s.layers for s in out if s.fits} == {1, 2}


def test_latency_search_of_a_family_that_cannot_prune_heads_tries_ffn_widths_only(distil_data, tmp_path, monkeypatch):
    """MPNet cannot prune heads (families.py): its search keeps every head and still prunes FFN neurons."""
    from edgepack.testing import tiny_model

    monkeypatch.setattr(shape, "onnx_latency_ms", lambda head, *a, **k: head.model.config.intermediate_size / 64)
    model = tiny_model(tmp_path / "mpnet", "mpnet", layers=2)
    target = tmp_path / "t.toml"
    target.write_text(tiny_target_toml(formats=("onnx",), buckets=(16,), min_cosine_vs_student=0.9)
                      + FULL_VOCAB_STUDENT.replace("layers = 2", "layers = 1"), encoding="utf-8")
    ctx = edgepack.build(target=str(target), model=str(model), data=(str(distil_data),), out=tmp_path / "b",
                         cache_dir=tmp_path / "c", max_latency_ms=0.6)
    search = ctx.student.info["shape_search"]
    assert {c["heads_keep"] for c in search["candidates"]} == {1.0}
    assert search["chosen"]["ffn_keep"] <= 0.5 and ctx.student.info["ffn"] == round(64 * search["chosen"]["ffn_keep"])


def test_distillation_text_is_capped_by_the_budget_only_when_one_is_given():
    from edgepack.student import distil

    texts = [f"text {i}" for i in range(10_000)]
    base = {"batch_size": 32, "steps": 0}
    epochs = train.Budget(steps=300)
    assert distil._cap_texts(texts, None, base, epochs, 0.0, 0)[0] == texts  # epochs: sized from the texts
    steps = {**base, "steps": 100}
    capped, _ = distil._cap_texts(texts, None, steps, train.Budget(steps=100), 0.0, 0)
    assert len(capped) == 100 * 32 // distil.TEXT_PASSES and capped == sorted(capped, key=texts.index)
    assert capped == distil._cap_texts(texts, None, steps, train.Budget(steps=100), 0.0, 0)[0]  # seeded
    # time budget: 256 held-out texts took 1 s -> 256 texts/s; 30% of 60 s -> 4,608 -> whole 1,024s: 4,096
    timed, _ = distil._cap_texts(texts, None, base, train.Budget(steps=10**9, seconds=60), 256 / 1.0, 0)
    assert len(timed) == 4096


def test_a_time_budget_bounds_the_student_stage_of_a_build(deep_tiny, distil_data, tmp_path, session_dir):
    target = tmp_path / "t.toml"
    target.write_text(tiny_target_toml(formats=("onnx",), buckets=(16,), min_cosine_vs_student=0.95) + FULL_VOCAB_STUDENT,
                      encoding="utf-8")
    ctx = edgepack.build(target=str(target), model=str(deep_tiny), data=(str(distil_data),), out=tmp_path / "b",
                         cache_dir=tmp_path / "cache", budget="4s")
    dist = ctx.student.info["distillation"]
    assert dist["budget"]["seconds"] == 4.0 and dist["budget"]["steps"] is None
    phase = dist["phases"][0]
    assert phase["stopped"] == "time" and phase["steps"] > 0
    assert ctx.timings["build student"] < 4.0 + 30  # the clock bounds training; loading and saving add a little
    assert dist["teacher_texts_per_second"] > 0
    # A re-run from a warm cache still times the teacher (a cached held-out slice once gave no speed, and
    # the guessed one sampled other texts, so the re-run missed the teacher cache).
    for d in (tmp_path / "cache").glob("distil-*"):
        shutil.rmtree(d)
    again = edgepack.build(target=str(target), model=str(deep_tiny), data=(str(distil_data),), out=tmp_path / "b2",
                           cache_dir=tmp_path / "cache", budget="4s")
    assert again.student.info["distillation"]["teacher_texts_per_second"] > 0


@pytest.mark.parametrize("trained", [False, True])
def test_train_embeddings_decides_whether_the_lookup_table_moves(session_dir, deep_tiny, distil_data, tmp_path, trained):
    """`[student] train_embeddings`: false keeps the factorised table's lookup at its SVD initialisation
    (only the projection trains); true trains it too."""
    target = tmp_path / "t.toml"
    target.write_text(tiny_target_toml(buckets=(16,), min_cosine_vs_student=0.98)
                      + FULL_VOCAB_STUDENT + f"train_embeddings = {str(trained).lower()}\n", encoding="utf-8")
    ctx = edgepack.build(target=str(target), model=str(deep_tiny), data=(str(distil_data),), out=tmp_path / "b",
                         cache_dir=tmp_path / "c")
    student = load_hf_model(ctx.student.dir, "sentence-embedding")
    teacher = load_hf_model(deep_tiny, "sentence-embedding")
    initial, _ = embedding.svd_factors(teacher.embeddings.word_embeddings.weight.data, 8)
    lookup = student.embeddings.word_embeddings.lookup.weight.data
    assert ctx.student.info["distillation"]["phases"][0]["best_step"] > 0  # trained weights shipped, not step 0
    assert torch.allclose(lookup, initial, atol=1e-6) is not trained
