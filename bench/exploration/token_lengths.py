"""How many STS-B dev sentences fit each sequence bucket, in the default bundle's tokenizer (the teacher's).

    python bench/exploration/token_lengths.py [BUNDLE]   # default: the targets bench's android-arm64 bundle
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import baselines  # noqa: E402  (puts the repo on sys.path)
from edgepack.runtime.edgepack_runtime import load_bundle  # noqa: E402

bundle = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.home() / ".cache" / "edgepack-bench" / "targets" / "android-arm64"
pairs = baselines.read_stsb(baselines.default_stsb(), None)
sentences = sorted({s for p in pairs for s in p[:2]})
n = np.array([len(ids) for ids in load_bundle(bundle, format="onnx").encode(sentences)])
print(f"{len(n)} STS-B dev sentences, tokens incl. [CLS]/[SEP]: mean {n.mean():.1f}, median {np.median(n):.0f}")
for k in (8, 12, 16, 24, 32, 64, 128):
    print(f"fit {k:>3} tokens: {(n <= k).mean():.1%}")
