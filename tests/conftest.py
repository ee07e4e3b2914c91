"""Shared fixtures: tiny seeded models and bundles built once per session, copied when a test mutates.

Real-model fixtures (the built-in MiniLM) are only used by tests marked `slow`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["HF_HUB_OFFLINE"] = "1"  # tests never download
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(autouse=True, scope="session")
def _deterministic_torch():
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("edgepack-session")


@pytest.fixture(scope="session")
def cache_dir(session_dir) -> Path:
    path = session_dir / "cache"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def tiny_model(session_dir) -> Path:
    from edgepack.testing import tiny_bert

    return tiny_bert(session_dir / "tiny-embed")


@pytest.fixture(scope="session")
def tiny_classifier(session_dir) -> Path:
    from edgepack.testing import tiny_bert

    return tiny_bert(session_dir / "tiny-cls", task="text-classification")


@pytest.fixture(scope="session")
def tiny_data(session_dir) -> Path:
    from edgepack.testing import TINY_SENTENCES

    path = session_dir / "tiny.txt"
    path.write_text("\n".join(TINY_SENTENCES) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_labelled_data(session_dir) -> Path:
    from edgepack.testing import TINY_SENTENCES

    path = session_dir / "tiny-labelled.csv"
    rows = ["text,label"] + [f"{s},{i % 2}" for i, s in enumerate(TINY_SENTENCES)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_target(session_dir) -> Path:
    from edgepack.testing import tiny_target_toml

    path = session_dir / "tiny-target.toml"
    path.write_text(tiny_target_toml(), encoding="utf-8")
    return path


def _build(model, target, data, out, cache_dir, **kw):
    import edgepack

    return edgepack.build(target=str(target), model=str(model), data=(str(data),), out=out, cache_dir=cache_dir, **kw)


@pytest.fixture(scope="session")
def tiny_bundle_ro(session_dir, tiny_model, tiny_target, tiny_data, cache_dir) -> Path:
    """A tiny embedding bundle (ONNX + TFLite). Do not modify: use `tiny_bundle` for a private copy."""
    out = session_dir / "bundle-embed"
    _build(tiny_model, tiny_target, tiny_data, out, cache_dir)
    return out


@pytest.fixture(scope="session")
def tiny_classifier_bundle_ro(session_dir, tiny_classifier, tiny_target, tiny_labelled_data, cache_dir) -> Path:
    out = session_dir / "bundle-cls"
    _build(tiny_classifier, tiny_target, tiny_labelled_data, out, cache_dir)
    return out


@pytest.fixture
def tiny_bundle(tiny_bundle_ro, tmp_path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(tiny_bundle_ro, dst)
    return dst


@pytest.fixture(scope="session")
def real_bundle_ro(session_dir, cache_dir) -> Path:
    """The default build on the built-in MiniLM teacher (android-arm64, --quick). Slow tests only."""
    import edgepack

    out = session_dir / "bundle-real"
    edgepack.build(target="android-arm64", out=out, cache_dir=cache_dir, quick=True)
    return out


@pytest.fixture(scope="session")
def deep_tiny(session_dir):
    """A 4-layer tiny teacher, so a 2-layer student is a real subset."""
    from edgepack.testing import tiny_bert

    return tiny_bert(session_dir / "tiny-embed-4l", layers=4)


@pytest.fixture(scope="session")
def distil_data(session_dir):
    from edgepack.testing import TINY_SENTENCES

    path = session_dir / "distil.txt"
    lines = [f"{a} and {b}" for a in TINY_SENTENCES for b in TINY_SENTENCES[:6]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
