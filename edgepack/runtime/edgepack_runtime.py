"""edgepack runtime: load an edgepack bundle and run it. One file, vendorable into any app or CI job.

Needs numpy, tokenizers and one interpreter: onnxruntime for .onnx, ai_edge_litert (or the older
tflite_runtime) for .tflite, executorch for .pte. Never torch itself; ExecuTorch's Python runtime takes
torch tensors, so a .pte brings torch in as that interpreter's own dependency (on Android the
ExecuTorch AAR has none).

    import edgepack_runtime as er
    bundle = er.load_bundle("dist/android-arm64")
    bundle.embed(["a sentence"])          # sentence-embedding bundles: [n, dim], L2-normalised
    bundle.classify(["a sentence"])       # classifier bundles: [{"label", "score", "scores"}]
    bundle(["a sentence"])                # whichever the bundle's task is

Thread safety: a Bundle may be shared between threads; calls into the interpreter are serialised by a
lock (LiteRT interpreters are not re-entrant), tokenisation runs outside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from pathlib import Path

import numpy as np

# 2 (issue #12): one .tflite per bundle, one signature per sequence bucket (format 1 shipped one .tflite
# per bucket). Older bundles are refused with one line, not read: each bundle vendors the
# edgepack_runtime.py that reads it, and a rebuild is one command.
FORMAT_VERSION = 2
OLDEST_FORMAT_VERSION = 2
MANIFEST = "edgepack.json"


class RuntimeErrorBase(Exception):
    """Base of the runtime's typed errors."""


class BundleFormatError(RuntimeErrorBase):
    """Not a bundle, a newer format than this runtime reads, or a manifest pointing outside the bundle."""


class NewerFormatError(BundleFormatError):
    """A bundle written by a newer edgepack: nothing is wrong with it, this runtime is too old."""


class OlderFormatError(BundleFormatError):
    """A bundle written by an older edgepack, in a layout this runtime no longer reads: rebuild it (or
    use the edgepack_runtime.py shipped inside it)."""


class BundleIntegrityError(RuntimeErrorBase):
    """A file's sha256 differs from the manifest, or a listed file is missing."""


class BackendUnavailable(RuntimeErrorBase):
    """No interpreter installed for the artifact's format."""


class InputError(RuntimeErrorBase, ValueError):
    """Bad arguments to embed/classify (not a list of strings, ...)."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def confined(root: Path, rel: str) -> Path:
    """Resolve a manifest path, refusing anything that escapes the bundle (../, absolute, symlinks out)."""
    if not isinstance(rel, str) or not rel or os.path.isabs(rel) or "\\" in rel:
        raise BundleFormatError(f"manifest path {rel!r} is not a relative path inside the bundle")
    root = root.resolve()
    full = (root / rel).resolve()
    if full != root and root not in full.parents:
        raise BundleFormatError(f"manifest path {rel!r} points outside the bundle")
    return full


def read_manifest(root: Path) -> dict:
    path = root / MANIFEST
    if not path.is_file():
        raise BundleFormatError(f"{root}: not an edgepack bundle (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleFormatError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise BundleFormatError(f"{path}: manifest must be a JSON object")
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise BundleFormatError(f"{path}: missing format_version")
    if version > FORMAT_VERSION:
        raise NewerFormatError(
            f"{path}: bundle format {version} is newer than this runtime reads ({FORMAT_VERSION}); upgrade edgepack"
        )
    if version < OLDEST_FORMAT_VERSION:
        raise OlderFormatError(
            f"{path}: bundle format {version} (one .tflite per sequence bucket) is older than this runtime reads "
            f"({OLDEST_FORMAT_VERSION}..{FORMAT_VERSION}); rebuild it with `edgepack build`, or load it with the "
            f"edgepack_runtime.py inside that bundle"
        )
    for key, kind in (("task", str), ("artifacts", list), ("tokenizer", dict), ("files", dict)):
        if key not in manifest:
            raise BundleFormatError(f"{path}: manifest has no '{key}'")
        if not isinstance(manifest[key], kind):
            raise BundleFormatError(f"{path}: manifest '{key}' must be a JSON {kind.__name__}")
    # A hand-edited manifest must fail here with one line, not as a KeyError deep in loading.
    if not all(isinstance(a, dict) and isinstance(a.get("path"), str) and isinstance(a.get("format"), str) for a in manifest["artifacts"]):
        raise BundleFormatError(f"{path}: every artifact needs a 'path' and a 'format'")
    if not all(isinstance(meta, dict) for meta in manifest["files"].values()):
        raise BundleFormatError(f"{path}: every file entry must be an object with a sha256")
    if not isinstance(manifest["tokenizer"].get("file"), str) or not isinstance(manifest["tokenizer"].get("max_length"), int):
        raise BundleFormatError(f"{path}: manifest tokenizer needs 'file' and 'max_length'")
    return manifest


def verify_files(root: Path, manifest: dict, only: list[str] | None = None) -> None:
    # A file we are about to load but the file table does not list would otherwise load unverified.
    for rel in only or ():
        if rel not in manifest["files"]:
            raise BundleIntegrityError(f"{rel}: not listed in the manifest's file table, so it cannot be verified")
    for rel, meta in manifest["files"].items():
        if only is not None and rel not in only:
            continue
        full = confined(root, rel)
        if not full.is_file():
            raise BundleIntegrityError(f"{rel}: listed in the manifest but missing")
        if sha256_file(full) != meta.get("sha256"):
            raise BundleIntegrityError(f"{rel}: sha256 differs from the manifest (file changed after build)")


def encode(tokenizer, texts, max_length: int, pad_id: int = 0, pad_to: int | None = None):
    """Token ids and attention mask, int64 [batch, longest or pad_to]; truncates at max_length."""
    configure_tokenizer(tokenizer, max_length)
    encs = tokenizer.encode_batch(list(texts))
    width = pad_to or max((len(e.ids) for e in encs), default=1)
    ids = np.full((len(encs), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(encs), width), dtype=np.int64)
    for row, e in enumerate(encs):
        n = min(len(e.ids), width)
        ids[row, :n] = e.ids[:n]
        mask[row, :n] = 1
    return ids, mask


def configure_tokenizer(tokenizer, max_length: int) -> None:
    """Truncate at max_length, no padding. Reconfigures only when the settings differ: the setters
    need exclusive access to the Rust tokenizer and raise "Already borrowed" while another thread
    is inside encode_batch."""
    truncation = tokenizer.truncation
    if not truncation or truncation.get("max_length") != max_length:
        tokenizer.enable_truncation(max_length)
    if tokenizer.padding is not None:
        tokenizer.no_padding()


def _version_tuple(version: str) -> tuple[int, ...]:
    """"1.20.0" -> (1, 20, 0); "1.22.0rc1" and "2.3.0+cpu" keep their leading release numbers."""
    out = []
    for part in str(version).split("."):
        digits = re.match(r"\d+", part)
        if not digits:
            break
        out.append(int(digits.group()))
        if digits.group() != part:
            break
    return tuple(out)


def check_requirements(artifact: dict, runtime: str, installed: str | None) -> None:
    """Refuse an artifact whose manifest entry needs a newer interpreter than the one installed (e.g.
    int4 word embeddings: onnxruntime >= 1.20, LiteRT >= 1.4.0). An older LiteRT would not fail on such
    a file: it would return wrong embeddings."""
    for req in artifact.get("requires") or ():
        if not isinstance(req, dict) or req.get("runtime") != runtime:
            continue
        need = str(req.get("min_version", "0"))
        if installed is None or _version_tuple(installed) < _version_tuple(need):
            package = req.get("python_package") or runtime
            raise BackendUnavailable(
                f"{artifact.get('path')} needs {package} >= {need} ({req.get('feature', 'see the manifest')}); "
                f"installed: {installed or 'an interpreter of unknown version'} (pip install -U {package})"
            )


class _OnnxBackend:
    """Dynamic batch and length: pad a batch to its longest member."""

    def __init__(self, path: Path, artifact: dict, threads: int):
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailable("onnxruntime is not installed (pip install onnxruntime)") from None
        check_requirements(artifact, "onnxruntime", ort.__version__)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    signatures: list[str] = []  # dynamic shapes: one graph, no signatures

    def run(self, ids: np.ndarray, mask: np.ndarray, signature: str | None = None) -> np.ndarray:
        if signature is not None:
            raise InputError(f"the onnx model has no signatures (asked for {signature!r})")
        feeds = {"input_ids": ids, "attention_mask": mask}
        return self.session.run(None, {n: feeds[n] for n in self.input_names})[0]


def _litert_interpreter(path: Path, threads: int, artifact: dict | None = None):
    try:
        from ai_edge_litert.interpreter import Interpreter

        installed = _package_version("ai-edge-litert")
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise BackendUnavailable("no LiteRT interpreter (pip install ai-edge-litert)") from None
        installed = None  # tflite_runtime (TF <= 2.14) predates LiteRT's version numbers and its newer kernels
    check_requirements(artifact or {}, "litert", installed)
    return Interpreter(model_path=str(path), num_threads=threads)


def _package_version(name: str) -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - Python < 3.8
        return None
    try:
        return version(name)
    except PackageNotFoundError:
        return None


class _PteBackend:
    """ExecuTorch (issue #14): one method with a dynamic sequence length, batch 1, int64 inputs. Each
    text runs at its own length, never padded, so a batch gives each row what it gives alone."""

    signatures: list[str] = []  # one method, dynamic length: no buckets to choose between

    def __init__(self, path: Path, artifact: dict, threads: int):
        try:
            import logging

            # torchao, imported by executorch, logs each optional GPU kernel it cannot load, and torch a
            # deprecation of how torchao registers its enums: neither is about this bundle
            logging.getLogger("torchao").setLevel(logging.ERROR)
            logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
            from executorch.runtime import Runtime
        except ImportError:
            raise BackendUnavailable("executorch is not installed (pip install executorch)") from None
        check_requirements(artifact, "executorch", _package_version("executorch"))
        # The quantized embedding lookups (embedding_byte / embedding_4bit) are kernels of this library,
        # outside XNNPACK; without the import the method fails to load ("Missing operator").
        import executorch.kernels.quantized  # noqa: F401
        import torch

        self.torch = torch
        self.method_name = (artifact.get("outputs") or [{}])[0].get("method", "forward")
        self.threads = _executorch_threads(threads)
        program = Runtime.get().load_program(Path(path))
        if self.method_name not in program.method_names:
            raise BundleFormatError(f"{artifact.get('path')}: no method {self.method_name!r} in the program "
                                    f"(has: {', '.join(sorted(program.method_names)) or 'none'})")
        _executorch_method_loaded()
        self.method = program.load_method(self.method_name)

    def run(self, ids: np.ndarray, mask: np.ndarray, signature: str | None = None) -> np.ndarray:
        if signature is not None:
            raise InputError(f"the pte model has no signatures (asked for {signature!r})")
        outs = []
        for row in range(ids.shape[0]):
            n = max(int(mask[row].sum()), 1)
            x = self.torch.from_numpy(np.ascontiguousarray(ids[row : row + 1, :n], dtype=np.int64))
            m = self.torch.ones((1, n), dtype=self.torch.int64)
            outs.append(self.method.execute([x, m])[0].detach().numpy()[0])
        return np.stack(outs)


def _executorch_threads(threads: int) -> int:
    """XNNPACK in ExecuTorch's pybindings runs on one process-wide pool (as many threads as cores by
    default); resize it to `threads` so latency means what the other formats' does. The call is
    experimental and unsafe once a method is loaded: a method loaded before a resize hangs in its next
    call (run here: executorch 1.5.1), so the pool is resized only before the process's first load,
    and a later bundle asking for another count runs on the pool as it is. Returns the pool's size."""
    try:
        from executorch.extension.pybindings import portable_lib
    except ImportError:  # pragma: no cover - a build without the pybindings cannot load a .pte either
        return threads
    get = getattr(portable_lib, "_threadpool_get_thread_count", None)
    reset = getattr(portable_lib, "_unsafe_reset_threadpool", None)
    if get is None or reset is None:
        return threads
    # Kept on ExecuTorch's own module, not here: `edgepack check` imports each bundle's copy of this
    # file as a module of its own, and the pool is one per process.
    with _native_stderr_silenced():  # creating the pool logs CPU probing and the resize from C++
        if get() != threads and not getattr(portable_lib, "_edgepack_methods_loaded", False):
            reset(threads)
        return int(get())


class _native_stderr_silenced:
    """Silence stderr for a moment, both file descriptor 2 and Python's sys.stderr: ExecuTorch's C++ logs
    reach one or the other (its pybindings hand them to sys.stderr, which a CLI may point elsewhere)."""

    def __enter__(self):
        import io
        import sys

        self.python, self.saved = sys.stderr, None
        try:
            sys.stderr.flush()
            self.saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # no real fd 2 (embedded interpreters): leave it
            self.saved = None
        sys.stderr = io.StringIO()
        return self

    def __exit__(self, *exc):
        import sys

        sys.stderr = self.python
        if self.saved is not None:
            os.dup2(self.saved, 2)
            os.close(self.saved)
        return False


def _executorch_method_loaded() -> None:
    from executorch.extension.pybindings import portable_lib

    portable_lib._edgepack_methods_loaded = True  # from now on the pool keeps its size (_executorch_threads)


class _TFLiteBackend:
    """Static shapes: one interpreter, one signature per sequence bucket (they share the weights),
    batch of 1, int32 inputs. A text runs through the shortest bucket that holds it."""

    def __init__(self, root: Path, artifact: dict, threads: int, pad_id: int = 0):
        # Padding uses the tokenizer's pad id, as the ONNX path and the Java core do (RoBERTa's is 1, and
        # its position ids count the non-pad tokens): every runtime feeds a signature the same input.
        self.pad_id = pad_id
        signatures = artifact.get("signatures") or []
        if not signatures or not all(isinstance(s, dict) and isinstance(s.get("name"), str)
                                     and isinstance(s.get("sequence_length"), int) for s in signatures):
            raise BundleFormatError(f"{artifact.get('path')}: a tflite artifact needs 'signatures' "
                                    "[{name, sequence_length}, ...]")
        self.interp = _litert_interpreter(confined(root, artifact["path"]), threads, artifact)
        have = set(self.interp.get_signature_list())
        missing = [s["name"] for s in signatures if s["name"] not in have]
        if missing:
            raise BundleFormatError(f"{artifact['path']}: no signature {', '.join(missing)} in the model "
                                    f"(has: {', '.join(sorted(have)) or 'none'})")
        self.output_key = (artifact.get("outputs") or [{}])[0].get("signature_output", "output_0")
        # (length, name, runner), shortest first; each runner allocates its own subgraph's tensors
        self.buckets = [(s["sequence_length"], s["name"], self.interp.get_signature_runner(s["name"]))
                        for s in sorted(signatures, key=lambda s: s["sequence_length"])]

    @property
    def max_length(self) -> int:
        return self.buckets[-1][0]

    @property
    def signatures(self) -> list[str]:
        return [name for _, name, _ in self.buckets]

    def bucket_for(self, length: int, signature: str | None = None):
        if signature is not None:
            for bucket in self.buckets:
                if bucket[1] == signature:
                    if bucket[0] < length:
                        raise InputError(f"{length} tokens do not fit signature {signature} ({bucket[0]} tokens)")
                    return bucket
            raise InputError(f"no signature {signature!r} (has: {', '.join(self.signatures)})")
        for bucket in self.buckets:
            if bucket[0] >= length:
                return bucket
        return self.buckets[-1]

    def run(self, ids: np.ndarray, mask: np.ndarray, signature: str | None = None) -> np.ndarray:
        outs = []
        for row in range(ids.shape[0]):
            n = int(mask[row].sum())
            seq, _, runner = self.bucket_for(max(n, 1), signature)
            x_ids = np.full((1, seq), self.pad_id, dtype=np.int32)
            x_mask = np.zeros((1, seq), dtype=np.int32)
            x_ids[0, :n] = ids[row, :n]
            x_mask[0, :n] = 1
            outs.append(np.array(runner(input_ids=x_ids, attention_mask=x_mask)[self.output_key][0]))
        return np.stack(outs)


class Bundle:
    def __init__(self, root, format: str | None = None, threads: int = 1, verify: bool = True, manifest: dict | None = None):
        self.root = Path(root)
        # A manifest in hand: edgepack measures a bundle it is still assembling, before writing edgepack.json.
        self.manifest = manifest if manifest is not None else read_manifest(self.root)
        m = self.manifest
        self.task = m["task"]
        self.labels = list(m.get("labels") or [])
        self.max_length = int(m["tokenizer"]["max_length"])
        self.pad_id = int(m["tokenizer"].get("pad_id", 0))
        formats = sorted({a["format"] for a in m["artifacts"]})
        self.format = format or m.get("default_format") or formats[0]
        if self.format not in formats:
            raise BundleFormatError(f"bundle has no {self.format} artifact (has: {', '.join(formats)})")
        chosen = [a for a in m["artifacts"] if a["format"] == self.format and a.get("shipped", True)]
        if len(chosen) != 1:
            raise BundleFormatError(f"{self.root}: format {m['format_version']} has one {self.format} artifact, "
                                    f"the manifest lists {len(chosen)}")
        tokenizer_file = m["tokenizer"]["file"]
        if verify:
            # Verify before anything is parsed: a tampered model must never reach the interpreter.
            verify_files(self.root, m, only=[a["path"] for a in chosen] + [tokenizer_file])
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise BackendUnavailable("tokenizers is not installed (pip install tokenizers)") from None
        try:
            self.tokenizer = Tokenizer.from_file(str(confined(self.root, tokenizer_file)))
            if self.format == "onnx":
                self.backend = _OnnxBackend(confined(self.root, chosen[0]["path"]), chosen[0], threads)
            elif self.format == "pte":
                self.backend = _PteBackend(confined(self.root, chosen[0]["path"]), chosen[0], threads)
            else:
                self.backend = _TFLiteBackend(self.root, chosen[0], threads, self.pad_id)
        except RuntimeErrorBase:
            raise
        except Exception as exc:  # the parsers raise their own types; callers get ours
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise BundleFormatError(f"{self.root}: cannot load the {self.format} model or tokenizer ({first})") from None
        if self.format == "tflite":
            self.max_length = min(self.max_length, self.backend.max_length)
        self.vocab_size = self.tokenizer.get_vocab_size()
        # TFLite: one signature per sequence bucket ("seq32", ...); ONNX, ExecuTorch: none (dynamic length)
        self.signatures = list(self.backend.signatures)
        configure_tokenizer(self.tokenizer, self.max_length)  # once, before any thread encodes
        self._lock = threading.Lock()

    # -- the public calls ------------------------------------------------------------------------
    def __call__(self, texts, batch_size: int = 32):
        return self.classify(texts, batch_size) if self.task == "text-classification" else self.embed(texts, batch_size)

    def encode(self, texts):
        """Token ids per text, exactly as the model sees them (truncated at max_length)."""
        texts = _check_texts(texts)
        ids, mask = encode(self.tokenizer, texts, self.max_length, self.pad_id)
        return [row[: int(m.sum())].tolist() for row, m in zip(ids, mask)]

    def run_ids(self, id_lists, signature: str | None = None) -> np.ndarray:
        """Raw model output for pre-tokenised inputs (golden cases use this). `signature` forces one
        TFLite bucket ("seq64") instead of the shortest that fits; golden cases run through each."""
        id_lists = [list(x) for x in id_lists]
        if not id_lists:
            return np.zeros((0, int(self.manifest.get("output_dim") or 0)), dtype=np.float32)
        for x in id_lists:
            if not x or len(x) > self.max_length:
                raise InputError(f"each id list needs 1..{self.max_length} ids, got {len(x)}")
            if min(x) < 0 or max(x) >= self.vocab_size:
                raise InputError(f"token ids must be in 0..{self.vocab_size - 1}")
        width = max(len(x) for x in id_lists)
        ids = np.full((len(id_lists), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(id_lists), width), dtype=np.int64)
        for row, x in enumerate(id_lists):
            ids[row, : len(x)] = x
            mask[row, : len(x)] = 1
        with self._lock:
            return np.asarray(self.backend.run(ids, mask, signature), dtype=np.float32)

    def outputs(self, texts, batch_size: int = 32) -> np.ndarray:
        texts = _check_texts(texts)
        if not texts:
            return np.zeros((0, int(self.manifest.get("output_dim", 0))), dtype=np.float32)
        chunks = []
        # Sort by length so a batch pads to similar lengths, then restore the caller's order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids, mask = encode(self.tokenizer, [texts[i] for i in idx], self.max_length, self.pad_id)
            with self._lock:
                chunks.append(np.asarray(self.backend.run(ids, mask), dtype=np.float32))
        out = np.concatenate(chunks)
        result = np.empty_like(out)
        result[np.array(order)] = out
        return result

    def embed(self, texts, batch_size: int = 32) -> np.ndarray:
        if self.task != "sentence-embedding":
            raise InputError(f"this bundle is a {self.task} model; use classify()")
        return self.outputs(texts, batch_size)

    def similarity(self, a: str, b: str) -> float:
        e = self.embed([a, b])
        return float(np.dot(e[0], e[1]) / (np.linalg.norm(e[0]) * np.linalg.norm(e[1]) + 1e-12))

    def classify(self, texts, batch_size: int = 32) -> list[dict]:
        if self.task != "text-classification":
            raise InputError(f"this bundle is a {self.task} model; use embed()")
        probs = softmax(self.outputs(texts, batch_size))
        results = []
        for p in probs:
            best = int(p.argmax())
            label = self.labels[best] if best < len(self.labels) else str(best)
            scores = {(self.labels[i] if i < len(self.labels) else str(i)): float(v) for i, v in enumerate(p)}
            results.append({"label": label, "score": float(p[best]), "scores": scores})
        return results


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    try:
        texts = list(texts)
    except TypeError:
        raise InputError("texts must be a string or a list of strings") from None
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise InputError(f"texts must be strings, got {type(t).__name__}")
        try:
            t.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: the tokenizer would fail with a bare TypeError
            raise InputError(f"texts[{i}] is not valid Unicode (lone surrogate); decode it with errors='replace'") from None
    return texts


def load_bundle(path, format: str | None = None, threads: int = 1, verify: bool = True, manifest: dict | None = None) -> Bundle:
    """Open a bundle: checks format version, confines paths, verifies sha256, then loads the model."""
    return Bundle(path, format=format, threads=threads, verify=verify, manifest=manifest)
