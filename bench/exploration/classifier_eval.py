"""SST-2 dev accuracy of classifier bundles (the experiments in classifier.md).

    python bench/exploration/classifier_eval.py BUNDLE [BUNDLE ...]

Each bundle is loaded with the edgepack_runtime.py it ships (so bundles of an older format still load);
dev rows are read from ../shared/data/sst2/dev.tsv relative to the repository."""

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np

DEV = Path(__file__).resolve().parents[3] / "shared" / "data" / "sst2" / "dev.tsv"


def runtime_of(bundle: Path):
    spec = importlib.util.spec_from_file_location(f"rt_{abs(hash(bundle))}", bundle / "edgepack_runtime.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(paths) -> None:
    with open(DEV, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    texts, gold = [r[0] for r in rows], np.array([int(r[1]) for r in rows])
    for path in map(Path, paths):
        rt = runtime_of(path)
        for fmt in ("tflite", "onnx"):
            b = rt.load_bundle(path, format=fmt)
            out = np.concatenate([b.outputs(texts[i : i + 64]) for i in range(0, len(texts), 64)])
            print(f"{path} {fmt} accuracy {float((out.argmax(1) == gold).mean()):.4f} on {len(texts)} SST-2 dev rows")


if __name__ == "__main__":
    main(sys.argv[1:])
