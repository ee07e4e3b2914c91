"""ExecuTorch layout and precision (issue #14): one method with a dynamic sequence length against one
method per bucket (seq32/seq64/seq128 in one .pte), and 8da8w against 8da4w, on a built student.

    python bench/pte.py --student DIR [--teacher-dir DIR] [--texts 64] [--reps 30]

DIR is a student directory from a build's cache (e.g. the android-arm64(-executorch) build's
`distil-*/student`). Each variant is quantised with edgepack's own code (quant/executorch.py), exported
(export.export_pte for the dynamic method; the same lowering per bucket for the methods), and run in
ExecuTorch's Python runtime, one thread, batch 1. Per variant: file size, export seconds, latency p50
at 10/32/64/128 tokens (the methods layout pads to the shortest bucket that holds the input, as the
TFLite signatures do), and cosine to the fp32 student (torch) on the last `--texts` sentences of the
built-in corpus (min / mean).
Writes bench/results/pte.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "results"
BUCKETS = (32, 64, 128)
LENGTHS = (10, 32, 64, 128)


def export_methods(head, path: Path, buckets) -> None:
    """One static-shape method per bucket in one program (the alternative the profile did not take)."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import ExecutorchBackendConfig, to_edge_transform_and_lower

    from edgepack.export import signature_name
    from edgepack.quant import quiet

    with quiet(), torch.no_grad():
        # two tensors, not one twice: export would treat the aliased inputs as the same input
        programs = {signature_name(seq): torch.export.export(
            head, (torch.ones(1, seq, dtype=torch.long), torch.ones(1, seq, dtype=torch.long)), strict=False)
            for seq in buckets}
        lowered = to_edge_transform_and_lower(programs, partitioner=[XnnpackPartitioner()])
        path.write_bytes(lowered.to_executorch(ExecutorchBackendConfig(do_quant_fusion_and_const_prop=True)).buffer)


def runner(path: Path, layout: str):
    import executorch.kernels.quantized  # noqa: F401
    import torch
    from executorch.runtime import Runtime

    program = Runtime.get().load_program(path)
    if layout == "dynamic":
        method = program.load_method("forward")
        return lambda ids: method.execute([ids, torch.ones_like(ids)])[0]
    methods = {seq: program.load_method(f"seq{seq}") for seq in BUCKETS}

    def run(ids):
        n = ids.shape[1]
        seq = next(s for s in BUCKETS if s >= n)
        x = torch.zeros(1, seq, dtype=torch.long)
        m = torch.zeros(1, seq, dtype=torch.long)
        x[0, :n], m[0, :n] = ids[0], 1
        return methods[seq].execute([x, m])[0]
    return run


def p50(fn, reps: int) -> float:
    from edgepack.measure.latency import time_calls  # the product's meter: the same warm-up and clock

    return statistics.median(time_calls(fn, reps))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--student", required=True, type=Path)
    ap.add_argument("--teacher-dir", type=Path, default=None, help="the teacher the student was made from (default: built-in)")
    ap.add_argument("--texts", type=int, default=64)
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()

    import numpy as np
    import torch

    from edgepack.data import builtin_corpus
    from edgepack.export import export_pte, shipped_head
    from edgepack.quant.executorch import quantize_head
    from edgepack.runtime.edgepack_runtime import _executorch_threads, encode
    from edgepack.targets import load_target
    from edgepack.teacher import builtin_model_path, inspect_model_dir
    from edgepack.tokenizer import load_tokenizer

    torch.set_num_threads(1)
    _executorch_threads(1)  # before the first method is loaded (see the runtime)
    teacher = inspect_model_dir(args.teacher_dir or builtin_model_path())
    head = shipped_head(args.student, teacher, max(BUCKETS))
    spec = load_target("android-arm64-executorch").quantize
    import dataclasses

    variants = {
        "dynamic, 8da8w + int4 table (shipped)": ("dynamic", spec),
        "methods seq32/64/128, 8da8w + int4 table": ("methods", spec),
        "dynamic, 8da4w + int4 table": ("dynamic", dataclasses.replace(spec, weight_bits=4, weight_block_size=32)),
    }
    tokenizer = load_tokenizer(args.student)
    texts = builtin_corpus()[-args.texts:]
    ids, mask = encode(tokenizer, texts, max(BUCKETS))
    rows = [row[: int(m.sum())] for row, m in zip(ids, mask)]
    with torch.no_grad():
        ref = np.stack([head(torch.tensor(np.array([r])), torch.ones(1, len(r), dtype=torch.long)).numpy()[0] for r in rows])
    filler = [t for r in rows for t in r]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (layout, qspec) in variants.items():
            path = Path(tmp) / "m.pte"
            t0 = time.perf_counter()
            q = quantize_head(head, qspec)
            export_pte(q, path, max(BUCKETS)) if layout == "dynamic" else export_methods(q, path, BUCKETS)
            seconds = time.perf_counter() - t0
            run = runner(path, layout)
            got = np.stack([run(torch.tensor(np.array([r]))).numpy()[0] for r in rows])
            cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
            latency = {str(n): round(p50(lambda n=n: run(torch.tensor([filler[:n]])), args.reps), 3) for n in LENGTHS}
            results[name] = {"bytes": path.stat().st_size, "export_s": round(seconds, 1), "latency_p50_ms": latency,
                             "cosine_vs_fp32_student": {"min": float(cos.min()), "mean": float(cos.mean())}}
            print(name, json.dumps(results[name]), flush=True)
    out = {"student": str(args.student), "texts": len(texts), "machine": f"{platform.machine()} {platform.processor()}",
           "reps": args.reps, "variants": results}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pte.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = ["# ExecuTorch layout and precision (bench/pte.py)", "",
             f"Student `{args.student}`; the last {len(texts)} sentences of the built-in corpus; one thread, batch 1, "
             f"p50 of {args.reps} calls; {out['machine']}.", "",
             "| variant | .pte MB | export s | p50 ms 10 / 32 / 64 / 128 tok | cosine vs fp32 student min / mean |",
             "|---|---|---|---|---|"]
    for name, r in results.items():
        lat = " / ".join(f"{r['latency_p50_ms'][str(n)]:.2f}" for n in LENGTHS)
        c = r["cosine_vs_fp32_student"]
        lines.append(f"| {name} | {r['bytes'] / 1e6:.2f} | {r['export_s']} | {lat} | {c['min']:.4f} / {c['mean']:.4f} |")
    (RESULTS / "pte.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
