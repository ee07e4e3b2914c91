"""STS-B dev fidelity of edgepack bundles, every format they ship, through the bundle's own runtime.

usage: python bench/exploration/score_bundles.py BUNDLE [BUNDLE ...]

Prints, per bundle and format: % of the teacher's STS-B dev Spearman, the mean and min cosine of the
2,910 dev sentences to the teacher (and the mean per genre: captions, forum, news), and the largest model
file. Uses `bench/baselines.py`'s reader, teacher and `quality()`, so the figures are computed as the
benchmarks compute them (imports edgepack).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import baselines as B  # noqa: E402


def main(argv: list[str]) -> int:
    import torch

    from edgepack.teacher import builtin_model_path

    torch.set_num_threads(1)
    pairs = B.read_stsb(B.default_stsb(), None)
    sentences = list(dict.fromkeys(s for a, b, _ in pairs for s in (a, b)))
    index = {s: i for i, s in enumerate(sentences)}
    teacher_emb = B.TorchTeacher(builtin_model_path()).embed(sentences)
    teacher = B.spearman(teacher_emb, index, pairs)
    for bundle in map(Path, argv):
        manifest = json.loads((bundle / "edgepack.json").read_text(encoding="utf-8"))
        for fmt in sorted({a["format"] for a in manifest["artifacts"]}):
            q = B.quality(B.BundleRow(fmt, bundle, fmt), sentences, pairs, index, teacher_emb)
            genres = ", ".join(f"{g} {v:.4f}" for g, v in q["cosine_to_teacher_by_genre"].items())
            print(f"{bundle} {fmt}: {100 * q['stsb_spearman'] / teacher:.2f}% of the teacher, cosine mean "
                  f"{q['cosine_to_teacher_mean']:.4f} min {q['cosine_to_teacher_min']:.3f} ({genres}), largest file "
                  f"{q['bytes_largest_file'] / 1e6:.2f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
