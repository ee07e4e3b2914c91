"""Quality / size / latency of distilled students (issue #4). A benchmark, not a test.

Reads ../shared/data (STS-B, SST-2; TSV, quoting off). Never copies it into the repo: the distillation
text it writes lives in the bench cache (--cache, default ~/.cache/edgepack-bench).

    .venv/bin/python bench/quality.py                      # full: all STS-B + SST-2 train text
    .venv/bin/python bench/quality.py --texts 4000 --sst2-train 2000 --epochs 3   # reduced scale

STS-B: the built-in MiniLM teacher, distilled on unlabeled in-domain sentences (STS-B train + SST-2
train text) into each student shape; dev Spearman of teacher fp32, fp32 student and int8 bundle.
SST-2: a classifier teacher fine-tuned here from MiniLM on SST-2 train (cached), distilled with its
labels; dev accuracy of teacher vs int8 bundle. Writes bench/results/quality.json + quality.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import edgepack  # noqa: E402
from edgepack.cache import hash_parts  # noqa: E402
from edgepack.modeling import load_hf_model, run_torch, wrap  # noqa: E402
from edgepack.teacher import builtin_model_path, inspect_model_dir  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
BASE_TARGET = ROOT / "targets" / "android-arm64.toml"
# Student shapes compared in the trade-off table: (layers, heads_keep, ffn_keep, vocab_size).
SHAPES = {
    "L3-h9-f768-v8k": (3, 0.75, 0.5, 8000),
    "L3-h12-f1536-v8k": (3, 1.0, 1.0, 8000),
    "L4-h9-f768-v8k": (4, 0.75, 0.5, 8000),
    "L2-h6-f768-v6k": (2, 0.5, 0.5, 6000),
}


def read_tsv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows[1:]


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).correlation)


def cosine_pairs(emb1: np.ndarray, emb2: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(emb1, axis=1) * np.linalg.norm(emb2, axis=1)
    return (emb1 * emb2).sum(1) / np.maximum(n, 1e-12)


def target_toml(layers, heads, ffn, vocab_size, epochs, gates_off=True) -> str:
    text = BASE_TARGET.read_text(encoding="utf-8")
    head, _, _ = text.partition("[student]")
    student = (
        f'[student]\nstrategy = "distil"\nlayers = {layers}\nheads_keep = {heads}\nffn_keep = {ffn}\n'
        f"vocab_prune = true\nvocab_size = {vocab_size}\nepochs = {epochs}\nlearning_rate = 2e-4\n"
    )
    budget = "[budget]\nmax_size_mb = 1000\n" if gates_off else ""
    return head + student + budget


def teacher_latency(head, tokenizer, texts, reps_texts: int = 100) -> dict:
    """Teacher fp32 in onnxruntime (same runtime as the bundle), single thread, batch 1, per sentence."""
    import tempfile

    import onnxruntime as ort

    from edgepack.export import export_onnx
    from edgepack.modeling import tokenizer_batch

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "teacher.onnx"
        export_onnx(head, path, "sentence-embedding")
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        times = []
        for t in texts[:reps_texts]:
            ids, mask = tokenizer_batch(tokenizer, [t], 128)
            feeds = {"input_ids": ids, "attention_mask": mask}
            sess.run(None, feeds)
            t0 = time.perf_counter()
            sess.run(None, feeds)
            times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)), "n": len(times)}


def bundle_latency(bundle, texts, reps_texts: int = 100) -> dict:
    times = []
    for t in texts[:reps_texts]:
        bundle.outputs([t])
        t0 = time.perf_counter()
        bundle.outputs([t])
        times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)), "n": len(times)}


def stsb(args, cache: Path) -> dict:
    from tokenizers import Tokenizer

    dev = read_tsv(DATA / "stsb" / "dev.tsv")
    gold = [float(r[0]) for r in dev]
    s1, s2 = [r[1] for r in dev], [r[2] for r in dev]
    train_text = [s for r in read_tsv(DATA / "stsb" / "train.tsv") for s in r[1:3]]
    train_text += [r[0] for r in read_tsv(DATA / "sst2" / "train.tsv")]
    train_text = list(dict.fromkeys(t.strip() for t in train_text if t.strip()))
    random.Random(0).shuffle(train_text)
    if args.texts:
        train_text = train_text[: args.texts]
    data_file = cache / f"stsb-sst2-text-{len(train_text)}.txt"
    data_file.write_text("\n".join(train_text) + "\n", encoding="utf-8")

    teacher_path = builtin_model_path()
    t = inspect_model_dir(teacher_path)
    tok = Tokenizer.from_file(str(teacher_path / "tokenizer.json"))
    head = wrap(load_hf_model(teacher_path, t.task), t.task, t.family, t.pooling, t.normalize)
    torch.set_num_threads(args.threads)
    e1, e2 = run_torch(head, tok, s1, 128), run_torch(head, tok, s2, 128)
    teacher_rho = spearman(cosine_pairs(e1, e2), gold)
    torch.set_num_threads(1)
    t_lat = teacher_latency(head, tok, s1)
    torch.set_num_threads(args.threads)
    teacher_params = sum(p.numel() for p in head.parameters())
    rows = []
    for name in args.shapes:
        layers, heads, ffn, vsize = SHAPES[name]
        target = cache / f"target-{name}.toml"
        target.write_text(target_toml(layers, heads, ffn, vsize, args.epochs), encoding="utf-8")
        out = cache / f"bundle-{name}-{len(train_text)}-{args.epochs}"
        t0 = time.perf_counter()
        ctx = edgepack.build(target=str(target), data=(str(data_file),), out=out, cache_dir=cache / "work", force=True, seed=0)
        build_s = time.perf_counter() - t0
        stok = Tokenizer.from_file(str(out / "tokenizer.json"))
        shead = wrap(load_hf_model(ctx.student.dir, t.task), t.task, t.family, t.pooling, t.normalize)
        student_rho = spearman(cosine_pairs(run_torch(shead, stok, s1, 128), run_torch(shead, stok, s2, 128)), gold)
        row = {"shape": name, "description": ctx.student.info["description"], "params": ctx.student.info["parameters"]["student"],
               "student_fp32_spearman": student_rho, "build_seconds": round(build_s, 1),
               "vocab_coverage_dev": None, "formats": {}}
        from edgepack.student import vocab as vocab_mod

        tj = json.loads((teacher_path / "tokenizer.json").read_text(encoding="utf-8"))
        sj = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
        row["vocab_coverage_dev"] = vocab_mod.coverage(tj, sj, s1 + s2)
        for fmt in ctx.target.formats:
            b = edgepack.load_bundle(out, format=fmt, threads=1)
            rho = spearman(cosine_pairs(b.embed(s1), b.embed(s2)), gold)
            lat = bundle_latency(b, s1)
            size = max((out / a.path).stat().st_size for a in ctx.artifacts if a.format == fmt)
            row["formats"][fmt] = {"spearman": rho, "model_file_mb": round(size / 1e6, 2), "latency": lat,
                                   "speedup_vs_teacher_fp32_onnx": round(t_lat["p50_ms"] / lat["p50_ms"], 2)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return {"teacher": {"spearman": teacher_rho, "params": teacher_params, "fp32_weights_mb": 90.87, "latency_fp32_onnx": t_lat},
            "distillation_texts": len(train_text), "epochs": args.epochs, "students": rows}


def sst2_teacher_rows(n: int) -> list[list[str]]:
    """The SST-2 train rows (sentence, label) the classifier teacher is fine-tuned on: a seeded shuffle,
    then the first n (0 = all). bench/fidelity.py builds with these same rows as --data."""
    train = read_tsv(DATA / "sst2" / "train.tsv")
    random.Random(1).shuffle(train)
    return train[:n] if n else train


def finetune_sst2_teacher(args, cache: Path) -> Path:
    """MiniLM + a classification head fine-tuned on SST-2 train (subset), cached by its settings."""
    from tokenizers import Tokenizer
    from transformers import BertForSequenceClassification

    train = sst2_teacher_rows(args.sst2_train)
    key = hash_parts("sst2-teacher-v1", len(train), args.sst2_teacher_epochs)
    out = cache / f"sst2-teacher-{key}"
    if (out / "config.json").is_file():
        return out
    src = builtin_model_path()
    model = BertForSequenceClassification.from_pretrained(src, num_labels=2, id2label={0: "negative", 1: "positive"},
                                                          label2id={"negative": 0, "positive": 1}, attn_implementation="eager")
    tok = Tokenizer.from_file(str(src / "tokenizer.json"))
    from edgepack.student.train import collate, make_batches, tokenize

    ids = tokenize(tok, [r[0] for r in train], 128)
    labels = torch.tensor([int(r[1]) for r in train])
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
    model.train()
    for epoch in range(args.sst2_teacher_epochs):
        for index in make_batches(ids, 32, 0, epoch):
            input_ids, mask = collate(ids, index)
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels[index]).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
    model.config.architectures = ["BertForSequenceClassification"]
    model.eval().save_pretrained(out, safe_serialization=True)
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (src / f).is_file():
            (out / f).write_bytes((src / f).read_bytes())
    return out


def sst2(args, cache: Path) -> dict:
    from tokenizers import Tokenizer

    teacher_dir = finetune_sst2_teacher(args, cache)
    dev = read_tsv(DATA / "sst2" / "dev.tsv")
    texts, gold = [r[0] for r in dev], np.array([int(r[1]) for r in dev])
    tok = Tokenizer.from_file(str(teacher_dir / "tokenizer.json"))
    head = wrap(load_hf_model(teacher_dir, "text-classification"), "text-classification", "bert")
    teacher_acc = float((run_torch(head, tok, texts, 128).argmax(1) == gold).mean())
    train = read_tsv(DATA / "sst2" / "train.tsv")
    random.Random(2).shuffle(train)
    train = train[: args.texts] if args.texts else train
    data_file = cache / f"sst2-train-{len(train)}.tsv"
    data_file.write_text("sentence\tlabel\n" + "".join(f"{r[0]}\t{r[1]}\n" for r in train), encoding="utf-8")
    layers, heads, ffn, vsize = SHAPES[args.shapes[0]]
    target = cache / "target-sst2.toml"
    target.write_text(target_toml(layers, heads, ffn, vsize, args.epochs), encoding="utf-8")
    out = cache / f"bundle-sst2-{len(train)}"
    ctx = edgepack.build(target=str(target), model=str(teacher_dir), data=(str(data_file),), out=out, cache_dir=cache / "work", force=True)
    result = {"teacher_accuracy": teacher_acc, "teacher_train_examples": args.sst2_train, "distillation_texts": len(train),
              "student": ctx.student.info["description"], "formats": {}}
    for fmt in ctx.target.formats:
        b = edgepack.load_bundle(out, format=fmt, threads=1)
        acc = float((b.outputs(texts).argmax(1) == gold).mean())
        result["formats"][fmt] = {"accuracy": acc, "relative": acc / teacher_acc}
    return result


def markdown(res: dict) -> str:
    s = res["stsb"]
    t = s["teacher"]
    lines = [
        "# Distilled students: quality, size, latency",
        "",
        f"Scale: {s['distillation_texts']} distillation texts (STS-B train + SST-2 train text), {s['epochs']} epochs; "
        f"command: `{res['command']}`. Latency: batch 1, single thread, STS-B dev sentences, this machine.",
        "",
        f"Teacher (all-MiniLM-L6-v2 fp32): STS-B dev Spearman **{t['spearman']:.4f}**, {t['params'] / 1e6:.1f}M params, "
        f"{t['fp32_weights_mb']} MB fp32, ONNX fp32 p50 {t['latency_fp32_onnx']['p50_ms']:.2f} ms.",
        "",
        "| student | params | fp32 Spearman | int8 format | int8 Spearman | % of teacher | model file MB | p50 ms | speed-up vs teacher |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in s["students"]:
        for fmt, f in r["formats"].items():
            lines.append(
                f"| {r['description']} | {r['params'] / 1e6:.2f}M | {r['student_fp32_spearman']:.4f} | {fmt} | {f['spearman']:.4f} | "
                f"{100 * f['spearman'] / t['spearman']:.1f}% | {f['model_file_mb']} | {f['latency']['p50_ms']:.2f} | {f['speedup_vs_teacher_fp32_onnx']}x |"
            )
    if "sst2" in res:
        c = res["sst2"]
        lines += ["", f"SST-2 dev: fine-tuned teacher accuracy **{c['teacher_accuracy']:.4f}** (trained on {c['teacher_train_examples'] or 'all'} examples); "
                  f"student {c['student']} distilled on {c['distillation_texts']} labelled texts:", ""]
        lines += [f"- {fmt} int8: accuracy {f['accuracy']:.4f} ({100 * f['relative']:.1f}% of teacher)" for fmt, f in c["formats"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=0, help="cap on distillation texts (0 = all)")
    ap.add_argument("--epochs", type=float, default=8)
    ap.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    ap.add_argument("--sst2-train", type=int, default=0, help="SST-2 train examples for the classifier teacher (0 = all)")
    ap.add_argument("--sst2-teacher-epochs", type=int, default=1)
    ap.add_argument("--skip-sst2", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "edgepack-bench")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"bench/quality.py needs {DATA} (STS-B and SST-2 TSV files)")
    args.cache.mkdir(parents=True, exist_ok=True)
    res = {"command": "python bench/quality.py " + " ".join(sys.argv[1:])}
    res["stsb"] = stsb(args, args.cache)
    if not args.skip_sst2:
        res["sst2"] = sst2(args, args.cache)
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "quality.json").write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    (results / "quality.md").write_text(markdown(res), encoding="utf-8")
    print(markdown(res))


if __name__ == "__main__":
    main()
