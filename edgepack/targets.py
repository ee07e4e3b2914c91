"""Target profiles: `targets/*.toml`, shipped as package data `edgepack.targets`, validated once."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .config import TASKS as _CLI_TASKS
from .errors import TargetError

TASKS = tuple(t for t in _CLI_TASKS if t != "auto")  # the [student.<task>] tables a profile may have

QUANT_MODES = ("dynamic-int8", "static-int8", "fp16", "none")
FORMATS = ("onnx", "tflite", "pte")
# How the bundle's files are laid out (issue #14). "edgepack": model.<format> at the root.
# "transformers.js": the Hugging Face layout transformers.js loads as it is (config.json,
# tokenizer_config.json, onnx/model_<dtype>.onnx) plus a demo page; see edgepack/web/.
LAYOUTS = ("edgepack", "transformers.js")


@dataclass(frozen=True)
class QuantizeSpec:
    mode: str = "dynamic-int8"
    per_channel: bool = True
    # Layers kept in float regardless of mode: layer names as in the report (`encoder.5.output.dense`,
    # `encoder.0` for a whole block) or ONNX node-name substrings (sensitive ops, see issue #5).
    exclude: tuple[str, ...] = ()
    # Accuracy-aware fallback: when a parity gate fails, keep up to this many of the most
    # sensitive layers in float before giving up.
    fallback_max_layers: int = 0
    # static-int8 only: how many training texts calibrate activation ranges.
    calibration_size: int = 64
    # static-int8 only: "int8" or "int16" activations (16x8 keeps more range; NPUs support both).
    activations: str = "int8"
    # static-int8 only: quantise every op, LayerNorm/Softmax/GELU included (NPUs/DSPs reject float ops).
    full_integer: bool = False
    # dynamic-int8, ONNX only: 0 = per-channel int8 weights (QDQ-free dynamic quantisation);
    # N > 0 = int8 weights in blocks of N along the input dimension (MatMulNBits, int8 compute via
    # accuracy_level 4). Blocks keep outlier columns from flattening a whole channel's scale:
    # MiniLM's min cosine to fp32 goes 0.990 -> 0.999 (see bench/results/quant_modes.md).
    block_size: int = 0
    # dynamic-int8 only: bits of the word-embedding table (the lookup indexed by input_ids; issue #11).
    # 8 = int8 like the other weights; 4 = int4 in blocks of `embedding_block_size` values along the
    # embedding dimension, one scale per block (ONNX com.microsoft.GatherBlockQuantized, needs
    # onnxruntime >= 1.20; TFLite blockwise EMBEDDING_LOOKUP, needs LiteRT >= 1.4.0). Only that table:
    # position/token-type tables and every matrix keep the mode's int8.
    embedding_bits: int = 8
    embedding_block_size: int = 32  # 32, 64, 128 or 256 (ai-edge-quantizer's blockwise granularities)
    # dynamic-int8 only: bits of the matrix-product weights (issue #12). 8 = int8 per channel (or in
    # `block_size` blocks for ONNX); 4 = int4 in blocks of `weight_block_size` inputs, one scale per
    # block (ONNX com.microsoft.MatMulNBits, TFLite blockwise FULLY_CONNECTED). Embedding lookups keep
    # `embedding_bits`; the same parity gates and accuracy-aware fallback apply.
    weight_bits: int = 8
    weight_block_size: int = 32  # 32, 64, 128 or 256: the granularities both quantisers share
    # How a matrix product kept out of int8 arithmetic (`exclude` and the accuracy-aware fallback) stores its
    # weights: "float", or "int8" (dynamic-int8, ONNX): int8 per output channel, dequantised at run time
    # (DequantizeLinear), so it computes in float on float activations while the file stays the size of an
    # all-int8 one. onnxruntime's dynamic int8 quantises each MatMul's activations per tensor, so one outlier
    # token costs every other token precision; the weights are per channel already. Without it a fallback layer
    # of a MiniLM-width student costs 1.8 MB (an FFN matrix in float). TFLite keeps float: its dynamic-range
    # kernels quantise activations per row.
    kept_weights: str = "float"


@dataclass(frozen=True)
class StudentSpec:
    # "teacher" keeps the teacher's architecture; "distil" builds a smaller student (issue #4).
    strategy: str = "teacher"
    layers: int = 0  # 0 = same as teacher
    heads_keep: float = 1.0  # share of attention heads kept by structured pruning
    ffn_keep: float = 1.0  # share of FFN neurons kept
    vocab_prune: bool = False
    epochs: float = 1.0
    # issue #4: vocabulary budget when vocab_prune is on (0 = corpus tokens + single characters only).
    vocab_size: int = 0
    augment: float = 1.0  # extra distillation texts made from the corpus (spans, joins), as a share of it
    learning_rate: float = 1e-4
    batch_size: int = 32
    quick_epochs: float = 0.0  # 0 = a quarter of `epochs` under --quick
    # issue #11: which teacher layers a shallower student keeps. "measured" scores every subset (a beam
    # search for deep teachers) by fidelity to the teacher on held-in text; "even" takes evenly spaced ones.
    layer_choice: str = "measured"
    # issue #11: > 0 factorises the word embeddings to this rank (SVD-initialised, trained), keeping the
    # teacher's whole vocabulary and tokenizer; 0 keeps the full table.
    embedding_rank: int = 0
    # issue #11: train the word-embedding lookup table too (the full table, or the factorised table's
    # lookup); false keeps it as initialised and trains only the factorisation's projection.
    train_embeddings: bool = False
    # issue #11: with --data smaller than the budget can use, fill the rest with the built-in general
    # text (unlabelled; the teacher's outputs are its targets).
    fill_text: bool = True
    # issue #11: the distillation budget. `steps` > 0 replaces `epochs` (reproducible); `minutes` > 0
    # bounds the wall clock of the whole student stage instead (teacher pass included); `--budget` overrides.
    steps: int = 0
    quick_steps: int = 0  # 0 = a quarter of `steps` under --quick
    minutes: float = 0.0
    eval_every: int = 50  # steps between held-out evaluations; the best checkpoint (step 0 included) ships
    patience: int = 0  # evaluations in a row without improvement before stopping early (0 = never)
    # issue #11: weight of a token-level loss beside the pooled one (or the logits): the hidden states at every
    # token, each student layer against the teacher layer it was copied from and the last against the teacher's
    # last (TinyBERT). It runs the teacher on every batch (slower steps) and needs the teacher's tokenizer, so
    # not with vocab_prune.
    token_loss: float = 0.0
    # The number format of distillation's matrix products (the teacher's pass over the distillation text and the
    # student's training steps): "fp32"; "bf16" (autocast: bfloat16 products; the weights, optimiser, loss and
    # held-out evaluations stay float32); "auto" = bf16 where the hardware has bfloat16 arithmetic (x86
    # AVX512-BF16 or AMX, a CUDA GPU with bf16), else fp32.
    train_precision: str = "fp32"
    # The dropout probability of every dropout in the student while it distils (hidden, attention, classifier).
    # 0 by default: distillation regresses onto the teacher's outputs and a 3-layer student under-fits them, so the
    # teacher's 0.1 only adds noise (the default student: STS-B dev mean cosine 0.898 -> 0.909, issue #11). The saved
    # student's config keeps the teacher's values, for whoever fine-tunes it later.
    dropout: float = 0.0


@dataclass(frozen=True)
class BudgetSpec:
    max_size_mb: float = 100.0
    min_cosine_vs_teacher: float = 0.0  # minimum over validation sentences
    min_mean_cosine_vs_teacher: float = 0.0
    min_cosine_vs_student: float = 0.0  # minimum over validation sentences, int8 vs fp32 student
    min_agreement_vs_teacher: float = 0.0  # classifiers: share of equal argmax
    min_agreement_vs_student: float = 0.0
    max_latency_ms_p95: float = 0.0  # 0 = not gated (x86 latency says little about ARM)
    # [student] vocab_prune only: the largest share (0-1) of validation words that may tokenise differently
    # from the teacher (words split into other pieces by the pruned vocabulary); 0 = not gated (issue #11).
    max_retokenized_words: float = 0.0


@dataclass(frozen=True)
class TargetProfile:
    name: str
    description: str
    formats: tuple[str, ...]
    default_format: str
    sequence_buckets: tuple[int, ...]
    quantize: QuantizeSpec
    student: StudentSpec
    budget: BudgetSpec
    threads: int = 1
    source: str = ""
    layout: str = "edgepack"  # one of LAYOUTS
    extra: dict = field(default_factory=dict, compare=False, hash=False)
    # issue #11: [student.<task>] tables, the [student] settings a build of that task uses instead
    # (each a full StudentSpec: [student] with the table's keys replaced). A classifier distilled from a
    # few thousand short labelled rows over-fits the step budget an embedding student needs.
    student_by_task: dict = field(default_factory=dict, compare=False, hash=False)
    # [shapes.<task>] sequence_buckets: the buckets a build of that task uses instead. A classifier's file
    # also carries its head, and a .tflite repeats each signature's graph, so a profile may give a
    # classifier fewer signatures to keep it under the same size gate.
    buckets_by_task: dict = field(default_factory=dict, compare=False, hash=False)

    def student_for(self, task: str) -> StudentSpec:
        """The [student] settings a build of `task` uses: [student.<task>] where the profile has one."""
        return self.student_by_task.get(task, self.student)

    def for_task(self, task: str) -> TargetProfile:
        """The profile as a build of `task` uses it: [shapes.<task>]'s buckets where the profile has them."""
        buckets = self.buckets_by_task.get(task)
        return dataclasses.replace(self, sequence_buckets=buckets) if buckets else self


_TOP_KEYS = {"name", "description", "formats", "default_format", "threads", "layout", "quantize", "shapes", "student",
             "budget"}
_SECTION_TYPES = {"quantize": QuantizeSpec, "student": StudentSpec, "budget": BudgetSpec}


def _targets_dir():
    # A source checkout or editable install reads the top-level targets/ folder; a wheel ships the
    # same files as the package `edgepack.profiles` (see pyproject.toml).
    here = Path(__file__).resolve().parent.parent / "targets"
    if here.is_dir() and any(here.glob("*.toml")):
        return here
    return resources.files("edgepack.profiles")


def available_targets() -> list[str]:
    return sorted(p.name[:-5] for p in _targets_dir().iterdir() if p.name.endswith(".toml"))


def load_target(name_or_path: str) -> TargetProfile:
    """Load a shipped profile by name, or a user's profile from a .toml path."""
    path = Path(name_or_path)
    if name_or_path.endswith(".toml"):
        if not path.is_file():
            raise TargetError(f"target file not found: {name_or_path}")
        text, source = path.read_text(encoding="utf-8", errors="replace"), str(path)
    else:
        res = _targets_dir() / f"{name_or_path}.toml"
        if not res.is_file():
            raise TargetError(
                f"unknown target '{name_or_path}'; choose one of: {', '.join(available_targets())}"
            )
        text, source = res.read_text(encoding="utf-8"), f"targets/{name_or_path}.toml"
    return parse_target(text, source)


def _check_section(raw: dict, cls, section: str, source: str) -> object:
    if not isinstance(raw, dict):
        raise TargetError(f"{source}: [{section}] must be a table")
    fields = cls.__dataclass_fields__
    kwargs = {}
    for key, value in raw.items():
        if key not in fields:
            raise TargetError(f"{source}: unknown key '{section}.{key}' (known: {', '.join(sorted(fields))})")
        default = fields[key].default
        if isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise TargetError(f"{source}: '{section}.{key}' must be a list of strings")
            value = tuple(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise TargetError(f"{source}: '{section}.{key}' must be true or false")
        elif isinstance(default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise TargetError(f"{source}: '{section}.{key}' must be a non-negative number")
            if isinstance(default, int) and not isinstance(default, bool) and not float(value).is_integer():
                raise TargetError(f"{source}: '{section}.{key}' must be a whole number")
            value = type(default)(value)
        elif isinstance(default, str) and not isinstance(value, str):
            raise TargetError(f"{source}: '{section}.{key}' must be a string")
        kwargs[key] = value
    return cls(**kwargs)


def _check_quantize(q: QuantizeSpec, formats: tuple[str, ...], source: str) -> None:
    if q.activations not in ("int8", "int16"):
        raise TargetError(f"{source}: 'quantize.activations' must be 'int8' or 'int16'")
    if q.mode != "static-int8" and (q.full_integer or q.activations != "int8"):
        raise TargetError(f"{source}: 'quantize.full_integer' and 'quantize.activations' need mode = \"static-int8\"")
    if q.mode == "static-int8" and q.calibration_size < 1:
        raise TargetError(f"{source}: 'quantize.calibration_size' must be at least 1")
    if q.block_size and (q.mode != "dynamic-int8" or q.block_size < 16 or q.block_size & (q.block_size - 1)):
        raise TargetError(f"{source}: 'quantize.block_size' needs mode = \"dynamic-int8\" and a power of two ≥ 16")
    if q.embedding_bits not in (4, 8):
        raise TargetError(f"{source}: 'quantize.embedding_bits' must be 8 or 4")
    if q.embedding_block_size not in (32, 64, 128, 256):
        raise TargetError(f"{source}: 'quantize.embedding_block_size' must be 32, 64, 128 or 256")
    if q.weight_bits not in (4, 8):
        raise TargetError(f"{source}: 'quantize.weight_bits' must be 8 or 4")
    if q.weight_block_size not in (32, 64, 128, 256):
        raise TargetError(f"{source}: 'quantize.weight_block_size' must be 32, 64, 128 or 256")
    if q.weight_bits == 4 and q.mode != "dynamic-int8":
        raise TargetError(f"{source}: 'quantize.weight_bits = 4' needs mode = \"dynamic-int8\" (got \"{q.mode}\")")
    if q.weight_bits == 4 and q.block_size:
        raise TargetError(f"{source}: 'quantize.block_size' is for int8 blocks; with 'weight_bits = 4' set "
                          "'weight_block_size' instead")
    if q.kept_weights not in ("float", "int8"):
        raise TargetError(f"{source}: 'quantize.kept_weights' must be 'float' or 'int8'")
    if q.kept_weights == "int8" and (q.mode != "dynamic-int8" or q.block_size or q.weight_bits != 8):
        raise TargetError(f"{source}: 'quantize.kept_weights = \"int8\"' needs mode = \"dynamic-int8\" with per-channel "
                          "int8 weights (no block_size, weight_bits = 8)")
    if q.embedding_bits == 4 and q.mode != "dynamic-int8":
        raise TargetError(f"{source}: 'quantize.embedding_bits = 4' needs mode = \"dynamic-int8\" (got \"{q.mode}\")")
    if "pte" in formats:
        # ExecuTorch quantises the torch module with torchao before export (quant/executorch.py): int8 or
        # 8da4w linear layers with dynamic activations, int8/int4 lookups. No calibrated or fp16 recipe yet.
        if q.mode not in ("dynamic-int8", "none"):
            raise TargetError(f"{source}: format \"pte\" supports quantize.mode \"dynamic-int8\" or \"none\" (got \"{q.mode}\")")
    if q.fallback_max_layers and q.mode not in ("static-int8", "dynamic-int8"):
        raise TargetError(f"{source}: 'quantize.fallback_max_layers' needs an int8 mode (static-int8 or dynamic-int8)")


def parse_target(text: str, source: str) -> TargetProfile:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"{source}: not valid TOML ({exc})") from None
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise TargetError(f"{source}: unknown key '{sorted(unknown)[0]}' (known: {', '.join(sorted(_TOP_KEYS))})")
    for key in ("name", "formats"):
        if key not in raw:
            raise TargetError(f"{source}: missing key '{key}'")
    if not isinstance(raw["name"], str) or not raw["name"]:
        raise TargetError(f"{source}: 'name' must be a non-empty string")
    formats = raw["formats"]
    if not isinstance(formats, list) or not formats or any(f not in FORMATS for f in formats):
        raise TargetError(f"{source}: 'formats' must be a non-empty list drawn from {list(FORMATS)}")
    default_format = raw.get("default_format", formats[0])
    if default_format not in formats:
        raise TargetError(f"{source}: 'default_format' must be one of 'formats'")
    shapes = raw.get("shapes", {})
    if not isinstance(shapes, dict):
        raise TargetError(f"{source}: [shapes] must be a table")
    shapes = dict(shapes)
    buckets_by_task = {}
    for task in [k for k in shapes if k in TASKS]:
        table = shapes.pop(task)
        if not isinstance(table, dict) or set(table) != {"sequence_buckets"}:
            raise TargetError(f"{source}: [shapes.{task}] takes sequence_buckets only")
        buckets_by_task[task] = tuple(_buckets(table["sequence_buckets"], f"shapes.{task}", source))
    if set(shapes) - {"sequence_buckets"}:
        raise TargetError(f"{source}: unknown key in [shapes] (known: sequence_buckets, {', '.join(TASKS)})")
    buckets = _buckets(shapes.get("sequence_buckets", [32, 64, 128]), "shapes", source)
    threads = raw.get("threads", 1)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise TargetError(f"{source}: 'threads' must be a whole number ≥ 1")
    layout = raw.get("layout", "edgepack")
    if layout not in LAYOUTS:
        raise TargetError(f"{source}: 'layout' must be one of {list(LAYOUTS)}")
    if layout == "transformers.js" and formats != ["onnx"]:
        # transformers.js runs ONNX through onnxruntime-web; nothing else would load there.
        raise TargetError(f"{source}: 'layout = \"transformers.js\"' needs formats = [\"onnx\"]")
    student_raw = raw.get("student", {})
    by_task_raw = {}
    if isinstance(student_raw, dict):
        by_task_raw = {k: v for k, v in student_raw.items() if k in TASKS}
        student_raw = {k: v for k, v in student_raw.items() if k not in TASKS}
    sections = {s: _check_section(student_raw if s == "student" else raw.get(s, {}), cls, s, source)
                for s, cls in _SECTION_TYPES.items()}
    student_by_task = {}
    for task, table in by_task_raw.items():
        if not isinstance(table, dict):
            raise TargetError(f"{source}: [student.{task}] must be a table")
        override = _check_section(table, StudentSpec, f"student.{task}", source)
        student_by_task[task] = dataclasses.replace(sections["student"], **{k: getattr(override, k) for k in table})
    if sections["quantize"].mode not in QUANT_MODES:
        raise TargetError(f"{source}: 'quantize.mode' must be one of {list(QUANT_MODES)}")
    _check_quantize(sections["quantize"], tuple(formats), source)
    if layout == "transformers.js" and sections["quantize"].embedding_bits == 4:
        # Run here: onnxruntime-web 1.31 (WebAssembly) fails to create the session, "Could not find an
        # implementation for GatherBlockQuantized(1)"; onnxruntime-node runs the same file.
        raise TargetError(f"{source}: 'quantize.embedding_bits = 4' is not for layout \"transformers.js\": "
                          "onnxruntime-web has no GatherBlockQuantized kernel (int4 lookup tables)")
    for where, spec in [("student", sections["student"])] + [(f"student.{t}", v) for t, v in student_by_task.items()]:
        _check_student(spec, where, source)
    if sections["budget"].max_retokenized_words > 1:
        raise TargetError(f"{source}: 'budget.max_retokenized_words' is a share of words: 0 to 1 (0 = not gated)")
    return TargetProfile(
        name=raw["name"],
        description=str(raw.get("description", "")),
        formats=tuple(formats),
        default_format=default_format,
        sequence_buckets=tuple(buckets),
        threads=threads,
        source=source,
        layout=layout,
        student_by_task=student_by_task,
        buckets_by_task=buckets_by_task,
        **sections,
    )


def _buckets(value, where: str, source: str) -> list[int]:
    if (
        not isinstance(value, list)
        or not value
        or any(isinstance(b, bool) or not isinstance(b, int) or b < 4 or b > 4096 for b in value)
        or sorted(set(value)) != value
    ):
        raise TargetError(f"{source}: '{where}.sequence_buckets' must be increasing whole numbers in 4..4096")
    return value


def with_max_mb(target: TargetProfile, max_mb: float | None) -> TargetProfile:
    """`--max-mb` is the user's size budget, so the gate holds every model file to it too (the smaller of it
    and the profile's max_size_mb). The shape search picks from size estimates, which miss what a format adds
    (a .tflite stores each signature's graph and quantisation parameters), and a file over the budget the user
    gave must fail the build, not ship."""
    if not max_mb or max_mb >= target.budget.max_size_mb:
        return target
    return dataclasses.replace(target, budget=dataclasses.replace(target.budget, max_size_mb=max_mb))


def _check_student(spec: StudentSpec, where: str, source: str) -> None:
    if spec.strategy not in ("teacher", "distil"):
        raise TargetError(f"{source}: '{where}.strategy' must be 'teacher' or 'distil'")
    for key in ("heads_keep", "ffn_keep"):
        if not 0 < getattr(spec, key) <= 1:
            raise TargetError(f"{source}: '{where}.{key}' must be in (0, 1]")
    if spec.layer_choice not in ("measured", "even"):
        raise TargetError(f"{source}: '{where}.layer_choice' must be 'measured' or 'even'")
    if spec.eval_every < 1:
        raise TargetError(f"{source}: '{where}.eval_every' must be at least 1")
    if spec.train_precision not in ("fp32", "bf16", "auto"):
        raise TargetError(f"{source}: '{where}.train_precision' must be 'fp32', 'bf16' or 'auto'")
    if not 0 <= spec.dropout < 1:
        raise TargetError(f"{source}: '{where}.dropout' must be in [0, 1)")
    if spec.token_loss and spec.vocab_prune:
        raise TargetError(f"{source}: '{where}.token_loss' compares tokens with the teacher's, so it needs vocab_prune = false")
