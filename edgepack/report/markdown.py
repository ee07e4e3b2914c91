"""report.md: the build's measured figures, for people."""

from __future__ import annotations

from ..student.shape import budget_flags


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def quantisation_label(q) -> str:
    """The profile's [quantize] in a phrase: "dynamic-int8 (per-channel: True; word embeddings int4, blocks of 32)"."""
    extra = ""
    if q.mode == "dynamic-int8" and q.weight_bits == 4:
        extra += f"; matrices int4, blocks of {q.weight_block_size}"
    if q.mode == "dynamic-int8" and q.embedding_bits == 4:
        extra += f"; word embeddings int4, blocks of {q.embedding_block_size}"
    return f"{q.mode} (per-channel: {q.per_channel}{extra})"


def markdown(ctx, metrics: dict) -> str:
    t, target = ctx.teacher, ctx.target
    lines = [
        f"# edgepack report: {target.name}",
        "",
        f"- task: **{t.task}**",
        f"- teacher: {t.description}",
        f"- student: {ctx.student.info.get('description', '?')}",
        f"- quantisation: {quantisation_label(target.quantize)}",
        f"- validation: {metrics.get('validation_texts')} held-out texts from {metrics.get('validation_source')}",
        f"- gates: **{'passed' if metrics.get('gates', {}).get('passed') else 'FAILED'}**",
    ]
    for failure in metrics.get("gates", {}).get("failures", []):
        lines.append(f"  - {failure}")
    lines += student_markdown(ctx.student.info)
    lines += fallback_markdown(metrics.get("fallback"), t.task)
    lines += tokenization_markdown(metrics.get("tokenization"), target.budget.max_retokenized_words)
    lines += ["", "## Parity", ""]
    if t.task == "text-classification":
        lines += ["| format | agreement vs teacher | agreement vs fp32 student | accuracy |", "|---|---|---|---|"]
        for fmt, m in metrics.get("formats", {}).items():
            lines.append(f"| {fmt} | {_fmt(m['vs_teacher']['agreement'])} | {_fmt(m['vs_student_fp32']['agreement'])} | {_fmt(m['vs_teacher'].get('accuracy', '-'))} |")
        if "student_fp32_vs_teacher" in metrics:
            lines += ["", f"fp32 student vs teacher: agreement {_fmt(metrics['student_fp32_vs_teacher']['agreement'])}."]
    else:
        lines += ["| format | cosine vs teacher (min / mean) | cosine vs fp32 student (min / mean) |", "|---|---|---|"]
        for fmt, m in metrics.get("formats", {}).items():
            vt, vs = m["vs_teacher"], m["vs_student_fp32"]
            lines.append(f"| {fmt} | {_fmt(vt['cosine_min'])} / {_fmt(vt['cosine_mean'])} | {_fmt(vs['cosine_min'])} / {_fmt(vs['cosine_mean'])} |")
        if "student_fp32_vs_teacher" in metrics:
            s = metrics["student_fp32_vs_teacher"]
            lines += ["", f"fp32 student vs teacher: cosine min {_fmt(s['cosine_min'])}, mean {_fmt(s['cosine_mean'])}."]
    lines += ["", "## Latency (single thread, this build machine's CPU)", "",
              "| format | input | p50 ms | p95 ms |", "|---|---|---|---|"]
    arts = {a.format: a for a in ctx.artifacts}
    for fmt, m in metrics.get("formats", {}).items():
        names = {s["sequence_length"]: s["name"] for s in arts[fmt].signatures} if fmt in arts else {}
        for seq, lat in m["latency"]["buckets"].items():
            sig = f" (signature {names[int(seq)]})" if int(seq) in names else ""
            lines.append(f"| {fmt} | {seq} tokens{sig} | {lat['p50_ms']:.2f} | {lat['p95_ms']:.2f} |")
        s = m["latency"]["sentences"]
        lines.append(f"| {fmt} | validation sentences (mean {m['latency']['sentence_tokens']['mean']:.0f} tokens) | {s['p50_ms']:.2f} | {s['p95_ms']:.2f} |")
    lines += ["", "Measured on the build machine (usually x86-64). ARM phones and boards run different kernels "
              "(XNNPACK / KleidiAI); expect different absolute numbers, and measure on the device.", "",
              "## Size", "", "| format | file (signatures) | precision | bytes | MB |", "|---|---|---|---|---|"]
    for fmt, m in metrics.get("formats", {}).items():
        art = arts.get(fmt)
        precision = art.precision if art else "?"
        # one file per format; TFLite buckets are signatures sharing its weights (issue #12)
        where = (art.path + (f" ({', '.join(s['name'] for s in art.signatures)})" if art.signatures else "")) if art else "?"
        lines.append(f"| {fmt} | {where} | {precision} | {m['size_bytes']} | {m['size_bytes'] / 1e6:.2f} |")
    needs = {(a.format, r["runtime"], r["min_version"], r.get("feature", "")) for a in ctx.artifacts for r in a.requires}
    for fmt, runtime, version, feature in sorted(needs):
        lines.append(f"\n{fmt} on a device needs {runtime} >= {version}: {feature}.")
    if ctx.timings:
        lines += ["", "## Build stages", "", "| stage | seconds |", "|---|---|"]
        lines += [f"| {k} | {v:.1f} |" for k, v in ctx.timings.items()]
    return "\n".join(lines) + "\n"


def fallback_markdown(fb: dict | None, task: str) -> list[str]:
    """What the accuracy-aware int8 fallback kept in float, with the gate figures before and after."""
    if not fb:
        return []
    key = "agreement" if task == "text-classification" else "cosine_min"
    lines = ["", "## Accuracy-aware int8 fallback", "",
             f"A parity gate failed with every layer in int8; the most sensitive layers were kept in float "
             f"(at most {fb['max_layers']}).", "",
             f"| format | kept in float | {key} vs fp32 student before → after | {key} vs teacher before → after | size before → after (bytes) | passed |",
             "|---|---|---|---|---|---|"]
    for fmt, e in fb["formats"].items():
        b, a = e["before"], e.get("after", e["before"])
        lines.append(
            f"| {fmt} | {', '.join(e['kept_float']) or '-'} | {_fmt(b['vs_student_fp32'][key])} → {_fmt(a['vs_student_fp32'][key])} "
            f"| {_fmt(b['vs_teacher'][key])} → {_fmt(a['vs_teacher'][key])} | {b['size_bytes']} → {a['size_bytes']} | {'yes' if e['passed'] else 'no'} |"
        )
    for fmt, e in fb["formats"].items():
        if e.get("kept_weights") == "int8" and e["kept_float"]:
            lines.append(f"\n{fmt}: the kept layers compute in float from int8 per-channel weights "
                         "(`[quantize] kept_weights = \"int8\"`), so the file stays the size of an all-int8 one.")
        if e.get("skipped_for_size"):
            lines.append(f"\n{fmt}: not kept, because in float they would take the file past max_size_mb: "
                         f"{', '.join(e['skipped_for_size'])}.")
        ranked = ", ".join(f"{x['layer']} ({x['error_removed']:.2e})" for x in e["sensitivity"][:5])
        # said only where the ranking did not run on the format's own files (pte: the torchao-quantised torch head)
        on = f", ranked on the {e['ranked_on']}" if e.get("ranked_on", f"{fmt} files") != f"{fmt} files" else ""
        lines.append(f"\n{fmt}: most sensitive layers (output error removed by keeping each alone in float{on}): {ranked}.")
    return lines


def tokenization_markdown(tk: dict | None, limit: float) -> list[str]:
    """How many validation words and texts the bundle's tokenizer splits differently from the teacher's."""
    if not tk or not tk.get("texts"):
        return []
    gate = f"gate: at most {limit:.1%} of words" if limit else "not gated (budget.max_retokenized_words = 0)"
    if not tk.get("vocab_pruned"):
        return ["", "## Tokenisation", "", "The bundle keeps the teacher's tokenizer: every validation text tokenises as the teacher's does."]
    return ["", "## Tokenisation (pruned vocabulary)", "",
            "| | share | count |", "|---|---|---|",
            f"| validation words tokenised differently from the teacher | {tk['retokenized_words']:.2%} | {tk['retokenized_word_count']} of {tk['words']} |",
            f"| validation texts tokenised differently | {tk['retokenized_texts']:.2%} | {tk['retokenized_text_count']} of {tk['texts']} |",
            f"| teacher wordpieces kept (token coverage) | {tk['token_coverage']:.2%} | |",
            f"| [UNK] share of the bundle's tokens | {tk['unk_rate']:.2%} | |",
            "", f"Words are whitespace-separated; {gate}."]


def student_markdown(info: dict) -> list[str]:
    """How the student was made (issue #11): the shape search, the layer choice and the distillation curve."""
    lines: list[str] = []
    search = info.get("shape_search")
    if search:
        lines += _search_markdown(search)
    choice = info.get("layer_choice") or {}
    if choice.get("candidates"):
        lines += ["", "## Layer choice", "",
                  f"{choice['scored']} subsets of the teacher's layers scored by {choice.get('metric', 'fidelity')} "
                  f"on held-out training text; the best was kept: **{info.get('teacher_layers_kept')}**.", "",
                  "| teacher layers | score |", "|---|---|"]
        lines += [f"| {c['layers']} | {c['score']:.4f} |" for c in choice["candidates"]]
        even = choice.get("evenly_spaced") or {}
        if even.get("score") is not None:
            lines += ["", f"Evenly spaced layers {even['layers']} would have scored {even['score']:.4f}."]
    dist = info.get("distillation") or {}
    phases = [p for p in dist.get("phases", []) if p.get("evals")]
    if phases:
        budget = dist.get("budget") or {}
        limit = f"{budget['seconds']:.0f} s" if budget.get("seconds") else f"{budget.get('steps')} steps"
        lines += ["", "## Distillation", "",
                  f"{dist.get('distilled_texts', dist.get('texts'))} texts"
                  + (f" ({dist['filled_texts']} of them built-in general text filling a small --data set)" if dist.get("filled_texts") else "")
                  + f", budget {limit}"
                  + ("; the teacher's pass and the student's matrix products in bfloat16 (weights, optimiser, loss and evaluations in float32)"
                     if (info.get("settings") or {}).get("train_precision") == "bf16" else "")
                  + "; held-out score "
                  + f"({dist.get('held_out_texts')} training texts never trained on) every {budget.get('eval_every')} steps. "
                  + ("The latest checkpoint within one standard error of the best held-out agreement ships (checkpoints that"
                     " close cannot be told apart on these texts), never one below step 0, so distillation never ends worse"
                     " than it started." if (info.get("settings") or {}).get("checkpoint_rule") == "latest-within-noise" else
                     "The best checkpoint ships, step 0 included, so distillation never ends worse than it started."), "",
                  "| phase | steps run | stopped by | held-out score at step 0 | kept | at step | curve (step: score) |",
                  "|---|---|---|---|---|---|---|"]
        for i, p in enumerate(phases, 1):
            curve = ", ".join(f"{st}: {sc:.4f}" for st, sc in p["evals"])
            lines.append(f"| {i} | {p['steps']} | {p['stopped']} | {p['evals'][0][1]:.4f} | {p['best_score']:.4f} | {p['best_step']} | {curve} |")
    return lines


def _search_markdown(search: dict) -> list[str]:
    """The shape search's table (issue #11): every candidate, what it measured, and the Pareto front."""
    chosen, lat = search["chosen"], search.get("latency")
    flags = budget_flags(search.get("max_mb"), search.get("max_latency_ms"), search.get("min_speedup"))

    def width(c) -> str:
        return f"{c.get('heads_keep', 1.0):.0%} / {c.get('ffn_keep', 1.0):.0%}"

    how = ("Each depth and width with the largest embedding rank that fits" if search.get("max_mb")
           else f"Each depth and width at the profile's embedding rank, within its {search.get('size_limit_mb', 0):g} MB size gate")
    probed = [c for c in search["candidates"] if c.get("trained_score") is not None]
    steps = search.get("probe_steps")
    teacher_vocab = search.get("teacher_vocab")
    vocabs = len(search.get("vocabularies") or ()) > 1  # the profile prunes the vocabulary: a column of its own

    def rows(c) -> str:
        return f"{c.get('vocab') or teacher_vocab:,}" + ("" if c.get("vocab") else " (teacher's)")

    lines = ["", f"## Shape search ({flags})", "",
             f"{how} (estimated int8 size, word embeddings {search['embedding_bits']}-bit), scored untrained by "
             "fidelity to the teacher on held-in text"
             + (f"; {len(probed)} of them (the best untrained, the best at full width and the best in the teacher's vocabulary) then distilled {steps} steps "
                "each and scored again, since an untrained score over-rates a larger embedding rank against pruned "
                "heads and neurons"
                if probed else "")
             + f". Distilled: **{chosen['layers']} layers {chosen['subset']}, heads / FFN kept {width(chosen)}, "
             f"embedding rank {chosen['rank'] or 'full'}"
             + (f", vocabulary {rows(chosen)}" if vocabs else "") + "**."]
    if vocabs:
        lines += ["", "The profile prunes the vocabulary (`[student] vocab_prune = true`), so vocabularies of "
                  + ", ".join(f"{v:,}" for v in search["vocabularies"])
                  + " rows (the first is the teacher's) were candidates too, each planned from the distillation text "
                  "and scored in its own token ids: held-out words that split differently count against it. Held-out "
                  "text is the user's own; text unlike it splits differently more often (see Tokenisation)."]
    if lat:
        lines += ["", f"Latency: p50 of a batch-1 call on {lat['tokens']} tokens, {lat['threads']} thread(s), the "
                  f"untrained candidate exported to ONNX and quantised as the profile says, timed in onnxruntime on "
                  f"the build machine (a phone differs); the teacher took {lat['teacher_ms']:.2f} ms the same way, so the "
                  f"budget was {search.get('latency_budget_ms') or search.get('max_latency_ms'):.3g} ms. "
                  "A binary search over depths times only a few shapes of each width; '-' was not timed (a shallower "
                  "shape of the same width than one within the budget, or a deeper one than one over it)."]
    lines += ["", f"| layers | heads / FFN kept | {'vocabulary | ' if vocabs else ''}embedding rank | estimated MB | latency ms "
              f"| vs teacher | fits | score (untrained) | after {steps or '-'} steps | Pareto (untrained) |",
              "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if vocabs else "")]
    key = ("layers", "rank", "heads_keep", "ffn_keep", "vocab")
    defaults = {"heads_keep": 1.0, "ffn_keep": 1.0, "vocab": 0}
    front = {tuple(p.get(k, defaults.get(k)) for k in key) for p in search["pareto"]}
    for c in search["candidates"]:
        score = "-" if c["score"] is None else f"{c['score']:.4f}"
        ms = c.get("latency_ms")
        speed = f"{lat['teacher_ms'] / ms:.2f}x" if (lat and ms) else "-"
        lines.append(f"| {c['layers']} | {width(c)} | {rows(c) + ' | ' if vocabs else ''}{c['rank'] or 'full'} | {c['estimated_mb']:.2f} | "
                     f"{'-' if ms is None else f'{ms:.2f}'} | {speed} | {'yes' if c['fits'] else 'no'} | {score} | "
                     f"{'-' if c.get('trained_score') is None else format(c['trained_score'], '.4f')} "
                     f"| {'yes' if tuple(c.get(k, defaults.get(k)) for k in key) in front else ''} |")
    return lines
