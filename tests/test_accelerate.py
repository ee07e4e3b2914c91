"""Scale-out: two CPU processes (torch.distributed, gloo) distil one student through Accelerate.

Only rank 0 writes the bundle; rank 1 trains its share of the batches and exits 0 without publishing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import edgepack
from edgepack.testing import TINY_SENTENCES, tiny_target_toml

STUDENT = """
[student]
strategy = "distil"
layers = 1
heads_keep = 0.5
vocab_prune = true
epochs = 2
batch_size = 4
"""


def build_on_two_processes(target, model, data, out, cache, *flags) -> subprocess.CompletedProcess:
    """`edgepack build` under torch.distributed.run with two CPU processes (gloo)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "edgepack", "build", "--target", str(target), "--model", str(model), "--data", str(data),
        "--out", str(out), "--cache-dir", str(cache), *flags,
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # two torch processes distilling: about a minute
def test_two_processes_produce_a_working_student(tmp_path, tiny_model):
    target = tmp_path / "t.toml"
    target.write_text(tiny_target_toml(formats=("onnx",), buckets=(16,)) + STUDENT, encoding="utf-8")
    data = tmp_path / "d.txt"
    data.write_text("\n".join(f"{a} {b}" for a in TINY_SENTENCES for b in TINY_SENTENCES[:3]) + "\n", encoding="utf-8")
    out = tmp_path / "bundle"
    proc = build_on_two_processes(target, tiny_model, data, out, tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "edgepack.json").read_text(encoding="utf-8"))
    assert manifest["student"]["distillation"]["processes"] == 2
    assert manifest["student"]["strategy"] == "distil"
    assert edgepack.check(out).passed
    # Exactly one bundle, no staging left behind by either rank.
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".bundle")]
    assert leftovers == []


@pytest.mark.slow  # two torch processes: about half a minute
def test_two_processes_train_the_shape_rank_0_timed(tmp_path, deep_tiny):
    """--max-latency-ms times candidates on rank 0 only and gives its choice to every rank (timings differ
    between processes; two ranks training different shapes would hang DDP)."""
    target = tmp_path / "t.toml"
    target.write_text(tiny_target_toml(formats=("onnx",), buckets=(16,), min_cosine_vs_student=0.95)
                      + '[student]\nstrategy = "distil"\nlayers = 2\nembedding_rank = 8\nsteps = 8\neval_every = 4\n'
                      + "batch_size = 4\n", encoding="utf-8")
    data = tmp_path / "d.txt"
    data.write_text("\n".join(f"{a} {b}" for a in TINY_SENTENCES for b in TINY_SENTENCES[:3]) + "\n", encoding="utf-8")
    out = tmp_path / "bundle"
    proc = build_on_two_processes(target, deep_tiny, data, out, tmp_path / "cache", "--max-latency-ms", "1000")
    assert proc.returncode == 0, proc.stderr[-3000:]
    student = json.loads((out / "edgepack.json").read_text(encoding="utf-8"))["student"]
    assert student["distillation"]["processes"] == 2
    assert student["shape_search"]["latency"]["teacher_ms"] > 0
    assert student["teacher_layers_kept"] == student["shape_search"]["chosen"]["subset"]
