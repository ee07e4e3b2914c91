"""The build's text: the user's --data files or the built-in corpus, with a held-out validation slice."""

from __future__ import annotations

import dataclasses

from ..context import BuildContext
from ..data import builtin_corpus, load_texts, split


def run(ctx: BuildContext) -> BuildContext:
    o = ctx.options
    if o.data:
        texts = load_texts(o.data, o.text_column, o.label_column, ctx.teacher.labels, o.seed, o.validation_size)
    else:
        texts = split(builtin_corpus(), None, o.seed, o.validation_size or 64, "built-in corpus")
    return dataclasses.replace(ctx, texts=texts)
