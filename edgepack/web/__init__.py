"""The transformers.js layout of a bundle (issue #14, `layout = "transformers.js"`, targets/web.toml).

transformers.js (`@huggingface/transformers`) loads a Hugging Face model folder: `config.json` (its
`model_type` picks the model class), `tokenizer.json` + `tokenizer_config.json`, and the graph at
`onnx/model<suffix>.onnx`, the suffix naming the weights' dtype (`dtype: "q4"` -> `model_q4.onnx`;
DEFAULT_DTYPE_SUFFIX_MAPPING in transformers.js). `config.json`'s `transformers.js_config.dtype` is the
dtype a plain `pipeline("feature-extraction", url)` picks, so the one shipped file is the one loaded.

Beside it the bundle carries `demo/`: a page that runs semantic search over the user's notes in the
browser, with transformers.js and onnxruntime-web's WebAssembly build vendored in `demo/vendor/` (no
CDN). They are copied from the versions `web/package-lock.json` pins (`npm ci --prefix web`).
"""

from __future__ import annotations

import json
import os
import shutil
from importlib import resources
from pathlib import Path

from ..errors import UsageError
from ..targets import QuantizeSpec

LAYOUT = "transformers.js"

# transformers.js dtype -> file suffix (its DEFAULT_DTYPE_SUFFIX_MAPPING, for the dtypes edgepack makes)
DTYPE_SUFFIX = {"fp32": "", "fp16": "_fp16", "int8": "_int8", "q4": "_q4"}

# What the demo page needs from the npm packages, copied into demo/vendor/ (package, file in it).
# transformers.min.js bundles onnxruntime-web's JavaScript; the WebAssembly build it imports at run time
# is the asyncify one (its default wasmPaths name that file); the .mjs is its loader.
VENDORED = (
    ("@huggingface/transformers", "dist/transformers.min.js"),
    ("@huggingface/transformers", "LICENSE"),
    ("onnxruntime-web", "dist/ort-wasm-simd-threaded.asyncify.mjs"),
    ("onnxruntime-web", "dist/ort-wasm-simd-threaded.asyncify.wasm"),
)
DEMO_FILES = ("index.html", "demo.js", "embedding.js")


def dtype_of(spec: QuantizeSpec) -> str:
    """The transformers.js dtype that names the file quantised per `spec`."""
    if spec.mode == "none":
        return "fp32"
    if spec.mode == "fp16":
        return "fp16"
    if spec.mode == "dynamic-int8" and spec.weight_bits == 4:
        return "q4"  # MatMulNBits int4 blocks (the int4 word table too, when embedding_bits = 4)
    return "int8"  # signed int8 weights (QInt8), per channel or in blocks


def model_path(spec: QuantizeSpec) -> str:
    """Where transformers.js looks for the graph of that dtype, relative to the bundle root."""
    return f"onnx/model{DTYPE_SUFFIX[dtype_of(spec)]}.onnx"


def check_teacher(pooling: str, dense, task: str) -> None:
    """transformers.js pools the token states itself (mean or first token) and knows no Dense module."""
    if task != "sentence-embedding":
        raise UsageError(f"layout \"{LAYOUT}\" is for sentence embeddings (feature-extraction); this model is a {task}")
    if pooling not in ("mean", "cls"):
        raise UsageError(f"layout \"{LAYOUT}\": transformers.js pools by mean or cls, not {pooling}")
    if dense:
        raise UsageError(f"layout \"{LAYOUT}\": transformers.js cannot apply the model's Dense module(s) after pooling")


def node_modules() -> Path:
    """The pinned npm packages: $EDGEPACK_WEB_MODULES, else web/node_modules of this source checkout."""
    env = os.environ.get("EDGEPACK_WEB_MODULES")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "web" / "node_modules"


def vendored_sources() -> list[tuple[Path, str]]:
    """(source file, name in demo/vendor/) for every vendored file; one clear error when any is missing."""
    root = node_modules()
    out = []
    for package, rel in VENDORED:
        src = root / package / rel
        if not src.is_file():
            raise UsageError(f"the web demo needs {package} from npm ({src} is missing): run `npm ci --prefix web` "
                             "in the edgepack checkout, or set EDGEPACK_WEB_MODULES to a node_modules folder that has it")
        name = f"{package.split('/')[-1]}-{Path(rel).name}" if Path(rel).name == "LICENSE" else Path(rel).name
        out.append((src, name))
    return out


def package_version(package: str) -> str:
    return json.loads((node_modules() / package / "package.json").read_text(encoding="utf-8"))["version"]


def write_layout(staging: Path, model_dir: Path, tokenizer_dir: Path, spec: QuantizeSpec, max_length: int) -> None:
    """config.json, tokenizer_config.json (and special_tokens_map.json when the tokenizer has one), and the
    demo page with its vendored runtime. tokenizer.json itself is the assemble stage's (tokenizer.py)."""
    vendor = vendored_sources()  # first: a missing runtime fails before anything is written
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    # The dtype a plain pipeline() loads, WebAssembly by default (WebGPU is the page's choice).
    config["transformers.js_config"] = {"dtype": dtype_of(spec)}
    (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    tok_config = {}
    if (tokenizer_dir / "tokenizer_config.json").is_file():
        tok_config = json.loads((tokenizer_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    # transformers.js truncates to model_max_length: the graph's position table ends at max_length.
    tok_config["model_max_length"] = max_length
    (staging / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2) + "\n", encoding="utf-8")
    if (tokenizer_dir / "special_tokens_map.json").is_file():
        shutil.copyfile(tokenizer_dir / "special_tokens_map.json", staging / "special_tokens_map.json")
    demo = staging / "demo"
    (demo / "vendor").mkdir(parents=True, exist_ok=True)
    for name in DEMO_FILES:
        (demo / name).write_text(resources.files("edgepack.web").joinpath("demo", name).read_text(encoding="utf-8"),
                                 encoding="utf-8")
    for src, name in vendor:
        shutil.copyfile(src, demo / "vendor" / name)
    versions = {p: package_version(p) for p in dict.fromkeys(p for p, _ in VENDORED)}
    (demo / "vendor" / "VERSIONS.json").write_text(json.dumps(
        {"packages": versions, "licenses": {"@huggingface/transformers": "Apache-2.0", "onnxruntime-web": "MIT"},
         "pinned_by": "web/package-lock.json in the edgepack source"}, indent=2) + "\n", encoding="utf-8")
