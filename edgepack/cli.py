"""The `edgepack` command line. Click commands only; heavy modules are imported inside commands.

Exit codes: 0 success, 1 a failed gate / parity / integrity check, 2 bad usage or bad input,
130 interrupted by SIGINT, 143 by SIGTERM, 3 an internal error (please report it; EDGEPACK_DEBUG=1 shows the traceback).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import click

from .errors import EdgepackError
from .targets import FORMATS

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def friendly_errors(fn):
    """One clear line and a documented exit code instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EdgepackError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("error: interrupted; nothing was written", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except MemoryError:
            click.echo("error: out of memory", err=True)
            sys.exit(3)
        except Exception as exc:  # the last line of defence; the bug is ours
            if os.environ.get("EDGEPACK_DEBUG"):
                raise
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            click.echo(f"error: internal error: {type(exc).__name__}: {first} (EDGEPACK_DEBUG=1 shows details)", err=True)
            sys.exit(3)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="edgepack")
def main():
    """Turn a transformer text model into a small, fast, verified on-device bundle."""
    _hide_native_noise()


def _hide_native_noise() -> None:
    """torchao, absl and LiteRT print pages of C-level log lines to fd 2 that say nothing to a user.

    Point fd 2 at /dev/null and give Python's sys.stderr (our progress, our errors) a private copy of
    the real stderr. Skipped under EDGEPACK_DEBUG=1 and when stderr is not a real file (CliRunner).
    """
    if os.environ.get("EDGEPACK_DEBUG"):
        return
    # torch, torchao and transformers log warnings through Python logging (not our output channel).
    import logging
    import warnings

    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    try:
        if sys.stderr.fileno() != 2:
            return
    except (AttributeError, OSError, ValueError):
        return
    sys.stderr.flush()
    real = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = os.fdopen(real, "w", buffering=1, encoding=sys.stderr.encoding or "utf-8", errors="replace")
    # faulthandler (PYTHONFAULTHANDLER=1, -X faulthandler) writes a crash's stack to the fd it was given: fd 2,
    # now /dev/null. Point it at the real stderr, or a native crash would leave no trace at all.
    import faulthandler

    if faulthandler.is_enabled():
        faulthandler.enable(file=sys.stderr)


@main.command()
@click.option("--target", "-t", default="android-arm64", show_default=True, help="Target profile name (see `edgepack targets`) or a .toml path.")
@click.option("--model", "-m", default=None, help="Local Hugging Face model directory. Default: built-in all-MiniLM-L6-v2.")
@click.option("--data", "-d", multiple=True, help="Text for distillation/calibration/validation: .txt, .csv, .tsv, .jsonl (repeatable).")
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None, help="Bundle directory. Default: dist/<target>.")
@click.option("--task", type=click.Choice(["auto", "sentence-embedding", "text-classification"]), default="auto", show_default=True)
@click.option("--text-column", default=None, help="Column/field holding the text in .csv/.tsv/.jsonl.")
@click.option("--label-column", default=None, help="Column/field holding labels (classifiers).")
@click.option("--student-layers", type=click.IntRange(1, 48), default=None, help="Depth of the distilled student (overrides the profile).")
@click.option("--quick", is_flag=True, help="Smaller distillation budget, for demos and CI.")
@click.option("--budget", default=None, metavar="STEPS|DURATION",
              help="Distillation budget: steps (600) or wall-clock time for the student stage (90s, 10m, 1h). Default: the profile's.")
@click.option("--max-mb", type=click.FloatRange(min=0.01), default=None,
              help="Pick the student shape (layers, embedding rank) that keeps the most fidelity with each model file under this many MB.")
@click.option("--max-latency-ms", type=click.FloatRange(min=0.001), default=None,
              help="Pick the student shape (layers, heads, FFN width) that keeps the most fidelity within this p50 "
                   "latency, measured here in onnxruntime (batch 1, the smallest bucket's length).")
@click.option("--min-speedup", type=click.FloatRange(min=1.0, min_open=True), default=None,
              help="Pick the student shape that keeps the most fidelity while at least this many times faster than the "
                   "teacher, both timed here as for --max-latency-ms (a ratio holds across machines better than ms).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--force", is_flag=True, help="Replace --out even if it is not an edgepack bundle.")
@click.option("--allow-pickle", is_flag=True, help="Allow loading pickle (.bin) weights. Only for files you trust.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None, help="Work/cache directory (default ~/.cache/edgepack or $EDGEPACK_CACHE).")
@friendly_errors
def build(target, model, data, out, task, text_column, label_column, student_layers, quick, budget, max_mb, max_latency_ms, min_speedup, seed, force,
          allow_pickle, cache_dir):
    """Distil, prune, quantise, export, validate and bundle a model for TARGET."""
    from .config import BuildOptions, parse_budget

    if budget is not None:
        parse_budget(budget)  # a bad value is one line before anything is loaded
    from .pipeline import build as run_build
    from .progress import using

    options = BuildOptions(
        target=target, model=model, data=tuple(data), out=out, task=task, seed=seed, quick=quick, force=force,
        allow_pickle=allow_pickle, text_column=text_column, label_column=label_column,
        student_layers=student_layers, cache_dir=cache_dir, budget=budget, max_mb=max_mb, max_latency_ms=max_latency_ms,
        min_speedup=min_speedup,
    )
    with _progress_reporter() as reporter, using(reporter):
        ctx = run_build(options)
    _print_summary(ctx)


def _progress_reporter():
    """A live rich display on a terminal; plain flushed lines (a line per stage, a sub-task's progress
    every ~10 s with its ETA and metrics) when stderr is a pipe or a file, as in CI or
    `edgepack build ... > build.log 2>&1`. EDGEPACK_PROGRESS=plain or =rich forces one."""
    from .progress import PlainReporter, RichReporter

    console = _console(stderr=True)
    forced = os.environ.get("EDGEPACK_PROGRESS", "").strip().lower()
    if forced == "plain" or (forced != "rich" and not console.is_terminal):
        return PlainReporter(sys.stderr)
    return RichReporter(console)


def _print_summary(ctx) -> None:
    console = _console()
    m = ctx.metrics
    console.print(f"[green]bundle written:[/] {ctx.bundle_dir}  (task {ctx.teacher.task}, student: {ctx.student.info.get('description')})")
    for fmt, entry in m.get("formats", {}).items():
        vt = entry["vs_teacher"]
        quality = (
            f"agreement {vt['agreement']:.3f}" if "agreement" in vt else f"cosine vs teacher min {vt['cosine_min']:.4f} mean {vt['cosine_mean']:.4f}"
        )
        lat = ", ".join(f"{k}: {v['p50_ms']:.1f} ms" for k, v in entry["latency"]["buckets"].items())
        console.print(f"  {fmt}: {entry['size_bytes'] / 1e6:.2f} MB, {quality}, p50 {lat}")
    console.print(f"  report: {ctx.bundle_dir / 'report.md'}")


@main.command()
@friendly_errors
def targets():
    """List the shipped target profiles."""
    from rich.table import Table

    from .targets import available_targets, load_target

    header = ("name", "formats", "quantisation", "buckets", "student", "max MB", "description")
    rows = []
    for name in available_targets():
        t = load_target(name)
        student = t.student.strategy if t.student.strategy == "teacher" else f"distil, {t.student.layers or 'all'} layers"
        rows.append((t.name, ", ".join(t.formats), t.quantize.mode + (" per-channel" if t.quantize.per_channel else ""),
                     ",".join(map(str, t.sequence_buckets)), student, f"{t.budget.max_size_mb:g}", t.description))
    console = _console()
    if not console.is_terminal:  # pipes and CI logs get plain tab-separated lines, never truncated
        for row in (header, *rows):
            click.echo("\t".join(row))
        return
    table = Table(title="edgepack targets")
    for col in header[:-1]:
        table.add_column(col, no_wrap=True)
    table.add_column(header[-1], overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)


@main.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--junit", type=click.Path(path_type=Path), default=None, help="Write a JUnit XML report here.")
@click.option("--data", "-d", multiple=True, help="Also gate parity vs the teacher on this text (.txt/.csv/.tsv/.jsonl; repeatable).")
@click.option("--teacher", type=click.Path(path_type=Path), default=None, help="Teacher model directory for parity (default: built-in, if the bundle was built from it).")
@click.option("--text-column", default=None, help="Column/field holding the text in --data.")
@click.option("--label-column", default=None, help="Column/field holding labels in --data (classifiers).")
@click.option("--allow-pickle", is_flag=True, help="Allow loading a pickle (.bin) teacher. Only for files you trust.")
@friendly_errors
def check(bundle, junit, data, teacher, text_column, label_column, allow_pickle):
    """Verify BUNDLE: sha256 of every file and its golden cases through the shipped runtime;
    with --data/--teacher, parity vs the teacher with the tolerances recorded in the bundle.

    Exit 0 pass, 1 integrity or parity failure, 2 bad usage (or a bundle format newer than this edgepack).
    """
    from .check import check_bundle, junit_xml
    from .errors import UsageError

    result = check_bundle(bundle, data=tuple(data), teacher=teacher, allow_pickle=allow_pickle,
                          text_column=text_column, label_column=label_column)
    if junit:
        try:
            junit.write_text(junit_xml(result), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--junit {junit}: cannot write ({exc.strerror or exc})") from None
    passed = sum(c.passed for c in result.cases)
    for c in result.failures:
        click.echo(f"FAIL {c.name}: {c.message}")
    if result.passed:
        click.echo(f"ok: {bundle}: {passed} checks passed")
        return
    click.echo(f"failed: {bundle}: {len(result.failures)} of {len(result.cases)} checks failed", err=True)
    sys.exit(1)


@main.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), multiple=True, help="Artifact(s) to measure (default: all).")
@click.option("--threads", type=click.IntRange(1, 256), default=None, help="N for the N-thread run (default: CPU count).")
@click.option("--data", "-d", multiple=True, help="Real sentences to time (default: the built-in corpus).")
@click.option("--sentences", type=click.IntRange(1, 100_000), default=200, show_default=True, help="How many sentences to time.")
@click.option("--reps", type=click.IntRange(1, 100_000), default=50, show_default=True, help="Timed runs per bucket.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Also write the results as JSON here.")
@friendly_errors
def bench(bundle, fmt, threads, data, sentences, reps, json_out):
    """Latency p50/p95/p99, throughput and peak memory of BUNDLE, at 1 and N threads."""
    import json

    from .benchmark import bench_bundle, render

    result = bench_bundle(bundle, formats=fmt or None, threads=threads, data=tuple(data), sentences=sentences, reps=reps)
    click.echo(render(result), nl=False)
    if json_out:
        _write_text(json_out, json.dumps(result, indent=2) + "\n")


@main.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@friendly_errors
def inspect(bundle, as_json):
    """Manifest summary, operators per artifact, share of weights quantised, sizes per part."""
    import json

    from .inspect import inspect_bundle, render

    info = inspect_bundle(bundle)
    click.echo(json.dumps(info, indent=2) if as_json else render(info), nl=not not as_json)


def _write_text(path: Path, text: str) -> None:
    from .errors import UsageError

    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot write ({exc.strerror or exc})") from None


@main.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("texts", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), default=None, help="Which artifact to run (default: the bundle's).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@friendly_errors
def predict(bundle, texts, fmt, as_json):
    """Run BUNDLE on TEXTS: labels with scores, embeddings, or the similarity of two texts."""
    import json

    from .errors import BundleFormatError, IntegrityError, UsageError
    from .runtime import edgepack_runtime as rt

    if not Path(bundle).is_dir():
        raise BundleFormatError(f"{bundle}: no such bundle directory")
    try:
        b = rt.load_bundle(bundle, format=fmt)
    except rt.BundleIntegrityError as exc:
        raise IntegrityError(str(exc)) from None
    except rt.RuntimeErrorBase as exc:
        raise BundleFormatError(str(exc)) from None
    for i, t in enumerate(texts, 1):
        try:
            t.encode("utf-8")
        except UnicodeEncodeError:  # argv bytes that are not UTF-8 arrive as lone surrogates
            raise UsageError(f"text {i} is not valid UTF-8") from None
    if b.task == "text-classification":
        results = b.classify(list(texts))
        if as_json:
            click.echo(json.dumps([{"text": t, **r} for t, r in zip(texts, results)], ensure_ascii=False))
            return
        for t, r in zip(texts, results):
            click.echo(f"{r['label']}\t{r['score']:.4f}\t{t}")
        return
    emb = b.embed(list(texts))
    if as_json:
        out = {"embeddings": emb.tolist()}
        if len(texts) == 2:
            out["similarity"] = float(emb[0] @ emb[1])
        click.echo(json.dumps(out))
        return
    if len(texts) == 2:
        click.echo(f"similarity\t{float(emb[0] @ emb[1]):.4f}")
    for t, e in zip(texts, emb):
        head = " ".join(f"{x:+.3f}" for x in e[:6])
        click.echo(f"[{len(e)}] {head} ...\t{t}")


if __name__ == "__main__":
    main()
