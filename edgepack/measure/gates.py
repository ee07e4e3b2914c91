"""The target profile's [budget] applied to measured figures. A failure is a typed `GateFailure`, so
the accuracy-aware fallback asks `kind == "parity"` instead of searching messages for words."""

from __future__ import annotations

from dataclasses import dataclass

from ..targets import BudgetSpec
from .stats import share_standard_error

KINDS = ("size", "parity", "latency", "fallback", "tokenization")


@dataclass(frozen=True)
class GateFailure:
    format: str  # "onnx", "tflite"; "tokenizer" for the tokenization gate (one tokenizer serves every format)
    kind: str  # one of KINDS
    metric: str  # the figure gated: "cosine_min", "agreement", "max_size_mb", ...
    value: float
    floor: float  # the profile's bound: a minimum for parity, a maximum for size and latency
    versus: str = ""  # parity: "vs_teacher" or "vs_student_fp32"
    kept_float: tuple[str, ...] = ()  # fallback: the layers it kept in float before giving up
    student_fp32: float | None = None  # vs_teacher: the same figure for the fp32 student the files were quantised from
    rows: int = 0  # validation texts an agreement was counted on: the message gives its standard error

    @property
    def student_misses(self) -> bool:
        """The fp32 student misses this teacher gate itself: int8 is not the cause, and no float layer can fix it."""
        return self.versus == "vs_teacher" and self.student_fp32 is not None and self.student_fp32 < self.floor

    def __str__(self) -> str:
        """The one-line message the CLI prints and report.md lists."""
        if self.kind == "size":
            # as many decimals as it takes to show the excess: "0.1 MB > max_size_mb 0.117569" read as a pass
            digits = next((d for d in range(1, 7) if round(self.value, d) > self.floor), 6)
            return f"{self.format}: model file {self.value:.{digits}f} MB > max_size_mb {self.floor}"
        if self.kind == "tokenization":
            return (f"{self.format}: {self.value:.1%} of validation words tokenise differently from the teacher "
                    f"(pruned vocabulary) > max_retokenized_words {self.floor:g}")
        if self.kind == "latency":
            return f"{self.format}: latency p95 {self.value:.1f} ms > {self.floor}"
        if self.kind == "fallback":
            names = ", ".join(self.kept_float) or "none"
            return (f"{self.format}: accuracy-aware fallback kept {len(self.kept_float)} most sensitive layer(s) in float "
                    f"({names}; quantize.fallback_max_layers = {self.floor}) and the gate still fails")
        line = f"{self.format}: {self.metric} {self.versus} {self.value:.4f} < {self.floor}"
        notes = []
        if self.metric == "agreement" and self.rows:
            # a share counted on a few hundred rows is noisy: say how much, so a user can tell chance from a real miss
            line += f" on {self.rows} validation texts"
            notes.append(f"standard error {share_standard_error(self.value, self.rows):.3f}")
        if self.student_misses:
            notes.append(f"the fp32 student itself: {self.student_fp32:.4f}, so int8 is not the cause; distil longer, "
                         "on more --data, or keep more layers")
        return line + (f" ({'; '.join(notes)})" if notes else "")


def parity_checks(task: str, b: BudgetSpec) -> list[tuple[str, str, float]]:
    """(versus, metric, floor) for the task; a floor of 0 is not gated."""
    if task == "text-classification":
        return [("vs_teacher", "agreement", b.min_agreement_vs_teacher), ("vs_student_fp32", "agreement", b.min_agreement_vs_student)]
    return [
        ("vs_teacher", "cosine_min", b.min_cosine_vs_teacher),
        ("vs_teacher", "cosine_mean", b.min_mean_cosine_vs_teacher),
        ("vs_student_fp32", "cosine_min", b.min_cosine_vs_student),
    ]


def gate_failures(task: str, budget: BudgetSpec, metrics: dict) -> list[GateFailure]:
    fails = []
    for fmt, m in metrics["formats"].items():
        mb = m["largest_file_bytes"] / 1e6
        if mb > budget.max_size_mb:
            fails.append(GateFailure(fmt, "size", "max_size_mb", mb, budget.max_size_mb))
        own = metrics.get("student_fp32_vs_teacher") or {}
        for versus, metric, floor in parity_checks(task, budget):
            value = m[versus][metric]
            if floor and value < floor:
                fails.append(GateFailure(fmt, "parity", metric, value, floor, versus,
                                         student_fp32=own.get(metric) if versus == "vs_teacher" else None,
                                         rows=metrics.get("validation_texts", 0)))
        if budget.max_latency_ms_p95:
            worst = max(x["p95_ms"] for x in m["latency"]["buckets"].values())
            if worst > budget.max_latency_ms_p95:
                fails.append(GateFailure(fmt, "latency", "max_latency_ms_p95", worst, budget.max_latency_ms_p95))
    tokenization = metrics.get("tokenization") or {}
    if budget.max_retokenized_words and tokenization.get("retokenized_words", 0) > budget.max_retokenized_words:
        fails.append(GateFailure("tokenizer", "tokenization", "max_retokenized_words", tokenization["retokenized_words"],
                                 budget.max_retokenized_words))
    fallback = metrics.get("fallback") or {}
    for fmt, entry in fallback.get("formats", {}).items():
        # The fallback ran for this format: it failed if it never passed or the final figures still miss.
        if not entry["passed"] or any(f.format == fmt for f in fails):
            fails.append(GateFailure(fmt, "fallback", "fallback_max_layers", len(entry["kept_float"]),
                                     fallback["max_layers"], kept_float=tuple(entry["kept_float"])))
    return fails
