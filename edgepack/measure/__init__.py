"""Measuring a bundle: what the build gates on, what `edgepack check` and `edgepack bench` report.

Nothing here imports torch at import time (`edgepack bench` measures in child processes that must
look like an app: numpy, tokenizers and one interpreter), and nothing imports a stage.

- stats.py       row cosine, percentiles, parity figures, per-sentence points for report.html
- latency.py     the one latency meter (build report and gates, `edgepack bench`)
- references.py  the torch fp32 outputs a bundle is compared with (torch imported when called)
- evaluate.py    parity, latency and size of the staged bundle, through the shipped runtime
- tokenization.py how the bundle's tokenizer splits text compared with the teacher's (pruned vocabularies)
- gates.py       the profile's [budget] applied to those figures: typed `GateFailure`s
- parity.py      `edgepack check --data/--teacher`: parity of a finished bundle on the user's data
"""
