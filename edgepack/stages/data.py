"""The build's text: the user's --data files or the built-in text (edgepack/data/: the project's corpus
and the general-English corpus), with a held-out validation slice."""

from __future__ import annotations

import dataclasses

from ..context import BuildContext
from ..data import builtin_texts, load_texts


def run(ctx: BuildContext) -> BuildContext:
    o = ctx.options
    if o.data:
        texts = load_texts(o.data, o.text_column, o.label_column, ctx.teacher.labels, o.seed, o.validation_size)
    else:
        texts = builtin_texts(o.seed, o.validation_size)
    return dataclasses.replace(ctx, texts=texts)
