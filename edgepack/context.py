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
    pooling: str  # mean | cls (embeddings only)
    normalize: bool
    labels: tuple[str, ...]  # classifiers only
    max_length: int
    description: str


@dataclass(frozen=True)
class Artifact:
    path: str  # relative to the bundle root
    format: str  # onnx | tflite
    precision: str  # fp32 | int8 | fp16
    sequence_length: int | None  # None = dynamic
    inputs: tuple[dict, ...] = ()
    outputs: tuple[dict, ...] = ()


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
    student_dir: Path | None = None  # HF directory of the fp32 student
    student_info: dict = field(default_factory=dict)
    tokenizer_dir: Path | None = None  # where the bundle's tokenizer comes from
    fp32_artifacts: tuple[Artifact, ...] = ()  # in work_dir, not shipped
    artifacts: tuple[Artifact, ...] = ()  # in staging_dir, shipped
    metrics: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
