"""The build context: what every stage reads and returns (a stage is `run(ctx) -> ctx`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .config import BuildOptions
from .targets import TargetProfile


@dataclass(frozen=True)
class Teacher:
    path: Path  # local HF directory
    task: str  # sentence-embedding | text-classification
    family: str  # key into families.FAMILIES
    pooling: str  # mean | cls | max (embeddings only)
    normalize: bool
    labels: tuple[str, ...]  # classifiers only
    max_length: int
    description: str
    # sentence-transformers Dense modules after pooling, in order (their directories; issue #13)
    dense: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Student:
    """The fp32 model that is exported: the teacher itself or a distilled student (issue #4)."""

    dir: Path  # HF directory of its weights
    tokenizer_dir: Path  # where the bundle's tokenizer comes from (its own when the vocabulary was pruned)
    is_teacher: bool  # then the teacher's outputs are the fp32 student's too
    vocab_pruned: bool  # its token ids differ from the teacher's, so the teacher keeps its own tokenizer
    info: dict  # strategy, description, content hash, ... (recorded in the manifest and report)
    output_dim: int | None = None  # width of the graph's output, set by the export stage


@dataclass(frozen=True)
class Artifact:
    path: str  # relative to the bundle root
    format: str  # onnx | tflite | pte
    precision: str  # fp32 | int8 | fp16 | "int8 (embeddings int4)"
    # static sequence lengths, one TFLite signature each (export.signature_name); () = dynamic (ONNX)
    buckets: tuple[int, ...]
    inputs: tuple[dict, ...] = ()
    outputs: tuple[dict, ...] = ()
    signatures: tuple[dict, ...] = ()  # {"name": "seq32", "sequence_length": 32} per bucket
    # what the device runtime needs beyond a current interpreter (quant.quantize.runtime_requirements)
    requires: tuple[dict, ...] = ()


@dataclass(frozen=True)
class Texts:
    train: tuple[str, ...]
    validation: tuple[str, ...]
    train_labels: tuple[int, ...] | None = None
    validation_labels: tuple[int, ...] | None = None
    source: str = "built-in"
    sha256: str = ""


@dataclass(frozen=True)
class BuildContext:
    options: BuildOptions
    target: TargetProfile
    work_dir: Path  # content-addressed cache for reusable stage outputs
    staging_dir: Path  # the bundle being assembled; renamed onto --out at the end
    out_dir: Path
    teacher: Teacher | None = None
    texts: Texts | None = None
    student: Student | None = None
    fp32_artifacts: tuple[Artifact, ...] = ()  # in work_dir, not shipped
    artifacts: tuple[Artifact, ...] = ()  # in staging_dir, shipped
    # torch outputs of the teacher and the fp32 student on the validation texts, computed once by the
    # measure stage for every later measurement (the fallback's)
    references: dict | None = None
    metrics: dict = field(default_factory=dict)  # what the measure stage found (report.json's "metrics")
    timings: dict = field(default_factory=dict)
    bundle_dir: Path | None = None  # --out, once the bundle is published there

    @property
    def max_length(self) -> int:
        """The most tokens the bundle ever feeds the model: the teacher's limit or the largest bucket."""
        return min(self.teacher.max_length, max(self.target.sequence_buckets))
