"""How faithfully the android-arm64 student stands in for its teacher (issue #11), measured side by side in one run.

    python bench/fidelity.py                     # everything (~40-50 min on 2 cores)
    python bench/fidelity.py --skip-before --skip-data --skip-classifier   # the default build only
    python bench/fidelity.py --skip-default --skip-before --skip-data --keep-previous   # re-measure the classifier, keep the rest
    python bench/fidelity.py --dry-run           # print the builds it would run, build nothing
    python bench/fidelity.py --smoke             # every build with --quick, 200 STS-B pairs: checks the script only

Builds, each cold (a fresh --cache-dir) through the CLI as a user runs it, timed wall-clock:
1. default: `python -m edgepack build --target android-arm64` on the built-in teacher and text;
2. before (`--skip-before`): the pre-#11 default student, bench/profiles/android-arm64-before.toml, same code;
3. data (`--skip-data`): the default target with STS-B train + SST-2 train sentences as --data (text
   only, a .txt written into the bench cache) and `--budget 15m` (`--data-budget`);
4. classifier (`--skip-classifier`): MiniLM fine-tuned on SST-2 train rows (bench/quality.py's cached
   fine-tuning), built with those labelled rows as --data and `--task text-classification`;
5. classifier-before (`--skip-classifier-before`): the same classifier teacher and rows, built with the
   pre-#11 student recipe (bench/profiles/android-arm64-before.toml): issue #11 says the classifier path must
   not regress, so the two are measured side by side;
6. speed (`--skip-speed`): the default target with `--min-speedup 3` (`--speed-factor`; 3 is the issue's
   speed goal): the shape search keeps the shape that is at least that many times faster than the teacher,
   both timed in the build as it times candidates; the fidelity a user keeps when they ask for that speed.

Then, in this process, on the same sentences: STS-B dev Spearman and the cosine of every dev sentence's
embedding to the teacher's (sentence-transformers fp32 on the built-in model dir), model file sizes, and
batch-1 single-thread latency on real dev sentences, every model taking turns sentence by sentence with
Optimum's dynamic int8 teacher (bench/baselines.py's functions); SST-2 dev accuracy of the classifier
teacher vs its bundle. Writes bench/results/fidelity.{json,md}.

Before each build and before timing latency it waits (up to --wait-max) until no other `edgepack build`
or pytest runs on the machine, and records any that ran alongside. Nothing is downloaded; the data comes
from ../shared/data (--data-dir) and derived files go to the bench cache (--cache) only. Only dev data is
scored; nothing is tuned on it here.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import random
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))

import baselines  # noqa: E402  (sets the offline/env variables, puts the repo on sys.path)
import numpy as np  # noqa: E402

RESULTS = REPO / "bench" / "results"
BEFORE_PROFILE = BENCH / "profiles" / "android-arm64-before.toml"
TARGET = "android-arm64"

# Goals of issue #11 ("Done when").
GOAL_SPEARMAN_PCT = 98.0
GOAL_MEAN_COSINE = 0.90
GOAL_FILE_MB = 8.0  # per model file, MB = 1e6 bytes as the build's max_size_mb gate counts them
GOAL_SPEEDUP = 3.0
GOAL_BUILD_S = 600.0
GOAL_DATA_SPEARMAN_PCT = 98.5
GOAL_CLASSIFIER_PCT = 98.5
HELD_OUT_TRAIN_ROWS = 2000  # SST-2 train rows used neither to fine-tune the classifier teacher nor to build


def log(msg: str) -> None:
    baselines.log(msg)


# -- other work on the machine ------------------------------------------------------------------
def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a for a in raw.decode("utf-8", "replace").split("\0") if a]


def _ppid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def heavy_processes() -> list[dict]:
    """Other `edgepack build` and pytest processes (not this script, not its children, not shells
    whose command line merely mentions them): what would skew a timing on a shared 2-core machine."""
    me = os.getpid()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        pid = int(d.name)
        argv = _cmdline(pid)
        if not argv or pid == me or os.path.basename(argv[0]) in ("bash", "sh", "zsh", "dash", "time", "timeout", "pgrep", "nohup"):
            continue
        names = [os.path.basename(a) for a in argv]
        is_build = "build" in argv and ("edgepack" in names or ("-m" in argv and "edgepack" in argv))
        is_pytest = "pytest" in names or ("-m" in argv and "pytest" in argv) or "py.test" in names
        if not (is_build or is_pytest):
            continue
        p, mine = pid, False
        for _ in range(64):  # is it a descendant of this process?
            p = _ppid(p)
            if p in (0, 1):
                break
            if p == me:
                mine = True
                break
        if not mine:
            found.append({"pid": pid, "cmd": " ".join(argv)[:160]})
    return found


def wait_idle(what: str, max_s: float) -> dict:
    """Sleep (30 s at a time) until no other build or pytest runs, at most max_s; say what was seen."""
    t0 = time.perf_counter()
    others = heavy_processes()
    if others and max_s > 0:
        log(f"{what}: waiting for other work to finish: {[o['cmd'][:80] for o in others]}")
    while others and time.perf_counter() - t0 < max_s:
        time.sleep(30)
        others = heavy_processes()
    waited = round(time.perf_counter() - t0, 1)
    if others:
        log(f"{what}: going ahead after {waited:.0f} s with other work still running: {[o['cmd'][:80] for o in others]}")
    return {"waited_s": waited, "others_at_start": others, "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}


class Sampler:
    """While a timed part runs: every 10 s, the other builds/pytest runs and the 1-minute load average."""

    def __init__(self):
        self.seen: dict[int, str] = {}
        self.load: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(10):
            for o in heavy_processes():
                self.seen.setdefault(o["pid"], o["cmd"])
            self.load.append(os.getloadavg()[0])

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        return {"others_during": [{"pid": p, "cmd": c} for p, c in self.seen.items()],
                "loadavg_1m_max": round(max(self.load), 2) if self.load else None,
                "loadavg_1m_mean": round(float(np.mean(self.load)), 2) if self.load else None}


# -- builds -------------------------------------------------------------------------------------
@dataclasses.dataclass
class Build:
    key: str  # default | before | data | classifier | classifier-before | speed
    label: str  # how the tables name it
    target: str
    extra: list[str]  # CLI arguments beyond --target/--out/--cache-dir
    out: Path
    cache_dir: Path

    def argv(self, quick: bool) -> list[str]:
        return (["build", "--target", self.target, *self.extra, "--out", str(self.out), "--cache-dir", str(self.cache_dir)]
                + (["--quick"] if quick else []))

    def command(self, quick: bool) -> str:
        return shlex.join(["python", "-m", "edgepack", *self.argv(quick)])


def run_build(b: Build, quick: bool, wait_max: float, keep_work: bool) -> dict:
    """Cold build through the CLI: fresh --cache-dir, plain progress lines into <out>.log, wall clock."""
    idle = wait_idle(f"build {b.key}", wait_max)
    for p in (b.out, b.cache_dir):
        if p.exists():
            shutil.rmtree(p)
    b.cache_dir.mkdir(parents=True)
    log_path = b.out.with_name(b.out.name + ".log")
    env = {**os.environ, "EDGEPACK_PROGRESS": "plain"}
    log(f"build {b.key}: {b.command(quick)}  (log: {log_path})")
    t0 = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as fh, Sampler() as sampler:
        proc = subprocess.Popen([sys.executable, "-m", "edgepack", *b.argv(quick)], cwd=REPO, env=env,
                                stdout=fh, stderr=subprocess.STDOUT)
        try:
            rc = proc.wait()
        except BaseException:
            proc.terminate()
            proc.wait()
            raise
    wall = time.perf_counter() - t0
    tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-15:]
    rec = {"key": b.key, "label": b.label, "command": b.command(quick), "rc": rc, "wall_s": round(wall, 1),
           "log": str(log_path), "bundle": str(b.out), "contention": {**idle, **sampler.summary()}}
    if rc != 0 or not (b.out / "report.json").is_file():
        rec["error"] = next((ln for ln in reversed(tail) if ln.startswith("error:")), None) or "\n".join(tail[-5:])
        log(f"build {b.key}: FAILED (exit {rc}) after {wall:.0f} s: {rec['error']}")
        failed = re.search(r"\(report: (\S+?report\.md)\)", rec["error"])
        if failed and Path(failed.group(1)).is_file():  # a failed gate's report lives in the work cache: keep it
            kept = b.out.with_name(b.out.name + ".failed-report")
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(Path(failed.group(1)).parent, kept)
            rec["failed_report"] = str(kept / "report.md")
            report = json.loads((kept / "report.json").read_text(encoding="utf-8"))
            rec["student_stage_s"] = (report.get("timings_s") or {}).get("build student")
            rec["failed_metrics"] = {f: {"vs_teacher": m.get("vs_teacher"), "vs_student_fp32": m.get("vs_student_fp32"),
                                         "largest_file_bytes": m.get("largest_file_bytes")}
                                     for f, m in (report.get("metrics") or {}).get("formats", {}).items()}
    else:
        report = json.loads((b.out / "report.json").read_text(encoding="utf-8"))
        info = report.get("student") or {}
        dist = info.get("distillation") or {}
        rec.update({
            "timings_s": report.get("timings_s"),
            "student_stage_s": (report.get("timings_s") or {}).get("build student"),
            "student": {
                "description": info.get("description"),
                "teacher_layers_kept": info.get("teacher_layers_kept"),
                "layer_choice": info.get("layer_choice"),
                "shape_search": {k: (info.get("shape_search") or {}).get(k) for k in ("chosen", "latency", "latency_budget_ms")}
                if info.get("shape_search") else None,
                "embedding_rank": info.get("embedding_rank"),
                "vocab_size": info.get("vocab_size"),
                "parameters": info.get("parameters"),
                "distillation": {k: dist.get(k) for k in ("texts", "augmented_texts", "filled_texts", "distilled_texts", "held_out_texts", "budget", "epochs")},
                "phases": [{k: ph.get(k) for k in ("steps", "best_step", "best_score", "stopped") if k in ph} for ph in dist.get("phases") or []],
            },
            "build_metrics": {f: {"largest_file_bytes": m.get("largest_file_bytes"),
                                  "cosine_vs_teacher": m.get("vs_teacher"), "vs_student_fp32": m.get("vs_student_fp32")}
                              for f, m in (report.get("metrics") or {}).get("formats", {}).items()},
        })
        log(f"build {b.key}: {wall:.0f} s wall, student stage {rec['student_stage_s']} s: {info.get('description')}")
    if not keep_work:
        shutil.rmtree(b.cache_dir, ignore_errors=True)
    return rec


# -- data ---------------------------------------------------------------------------------------
def read_tsv(path: Path) -> list[list[str]]:
    import csv

    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]


def write_if_changed(path: Path, text: str) -> Path:
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return path


def in_domain_text(data_dir: Path, cache: Path, limit: int) -> tuple[Path, int]:
    """STS-B train sentences (both sides) + SST-2 train sentences, text only, de-duplicated, in a .txt
    in the bench cache (never in the repo)."""
    texts = [s for r in read_tsv(data_dir / "stsb" / "train.tsv") for s in r[1:3]]
    texts += [r[0] for r in read_tsv(data_dir / "sst2" / "train.tsv")]
    texts = list(dict.fromkeys(t.strip() for t in texts if t.strip()))
    if limit:
        texts = random.Random(0).sample(texts, min(limit, len(texts)))
    name = f"stsb-sst2-train-text-{len(texts)}.txt"
    return write_if_changed(cache / name, "\n".join(texts) + "\n"), len(texts)


def classifier_data(cache: Path, n: int, epochs: int) -> tuple[Path, Path, int, float]:
    """The fine-tuned SST-2 teacher (bench/quality.py's cached fine-tuning) and the labelled rows it was
    fine-tuned on, as the TSV the build gets as --data. Returns (teacher dir, tsv, rows, fine-tune s)."""
    import quality
    import torch

    rows = quality.sst2_teacher_rows(n)
    tsv = write_if_changed(cache / f"sst2-train-labelled-{len(rows)}.tsv",
                           "sentence\tlabel\n" + "".join(f"{r[0]}\t{r[1]}\n" for r in rows))
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    t0 = time.perf_counter()
    teacher = quality.finetune_sst2_teacher(argparse.Namespace(sst2_train=n, sst2_teacher_epochs=epochs), cache)
    return teacher, tsv, len(rows), round(time.perf_counter() - t0, 1)


# -- measuring ----------------------------------------------------------------------------------
def classifier_accuracy(teacher_dir: Path, bundle: Path, dev: list[list[str]]) -> dict:
    """SST-2 dev accuracy: the fine-tuned teacher in torch fp32 vs each format of its bundle."""
    import torch
    from tokenizers import Tokenizer

    from edgepack.modeling import load_hf_model, run_torch, wrap
    from edgepack.runtime.edgepack_runtime import load_bundle

    texts, gold = [r[0] for r in dev], np.array([int(r[1]) for r in dev])
    torch.set_num_threads(os.cpu_count() or 1)
    tok = Tokenizer.from_file(str(teacher_dir / "tokenizer.json"))
    head = wrap(load_hf_model(teacher_dir, "text-classification"), "text-classification", "bert")
    t_pred = run_torch(head, tok, texts, 128).argmax(1)
    torch.set_num_threads(1)
    t_acc = float((t_pred == gold).mean())
    config = json.loads((teacher_dir / "config.json").read_text(encoding="utf-8"))
    name_to_id = {str(v): int(k) for k, v in (config.get("id2label") or {}).items()}
    out = {"teacher_accuracy": t_acc, "dev_rows": len(dev), "formats": {}}
    manifest = json.loads((bundle / "edgepack.json").read_text(encoding="utf-8"))
    for fmt in sorted({a["format"] for a in manifest["artifacts"]}):
        b = load_bundle(bundle, format=fmt, threads=1)
        idx = b.outputs(texts).argmax(1)
        labels = list(b.labels) or [str(i) for i in range(int(idx.max()) + 1)]
        pred = np.array([name_to_id.get(labels[i], int(labels[i]) if labels[i].isdigit() else -1) for i in idx])
        acc = float((pred == gold).mean())
        out["formats"][fmt] = {"accuracy": acc, "pct_of_teacher": 100 * acc / t_acc,
                               "agreement_with_teacher": float((pred == t_pred).mean())}
    return out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.machine()} {cpu}, {os.cpu_count()} CPUs, {platform.system()}"


def code_state() -> dict:
    def git(*a):
        try:
            return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True, timeout=30).stdout.rstrip()
        except (OSError, subprocess.SubprocessError):
            return ""

    target = REPO / "targets" / f"{TARGET}.toml"
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "uncommitted": [ln[3:] for ln in git("status", "--porcelain", "--", "edgepack", "targets").splitlines()],
            "target_toml_sha256": hashlib.sha256(target.read_bytes()).hexdigest()[:16]}


# -- results ------------------------------------------------------------------------------------
def pct(x: float, digits: int = 1) -> str:
    return f"{x:.{digits}f}%"


def pct_vs(x: float, goal: float) -> str:
    """A percentage next to its goal, with enough digits that the rounding never hides which side it is on."""
    digits = 2
    while digits < 6 and (round(x, digits) >= goal) != (x >= goal):
        digits += 1
    return pct(x, digits)


def fmt_s(s: float | None) -> str:
    if s is None:
        return "—"
    return f"{s:.0f} s ({int(s // 60)} min {int(s % 60):02d} s)" if s >= 60 else f"{s:.0f} s"


def goals(result: dict) -> list[dict]:
    rows = {(r["build"], r.get("format")): r for r in result["rows"]}
    builds = result["builds"]
    out = []

    def add(goal, measured, met, build="default"):
        out.append({"build": build, "goal": goal, "measured": measured, "met": None if met is None else bool(met)})

    d = builds.get("default")
    fmts = [r for (k, f), r in rows.items() if k == "default"]
    if d and fmts:
        for r in fmts:
            add(f"≥ {GOAL_SPEARMAN_PCT:g}% of the teacher's STS-B dev Spearman ({r['format']})", pct_vs(r["pct_of_teacher"], GOAL_SPEARMAN_PCT),
                r["pct_of_teacher"] >= GOAL_SPEARMAN_PCT)
        for r in fmts:
            add(f"mean cosine to the teacher ≥ {GOAL_MEAN_COSINE:.2f} on STS-B dev sentences ({r['format']})",
                f"{r['cosine_to_teacher_mean']:.4f} (min {r['cosine_to_teacher_min']:.4f})", r["cosine_to_teacher_mean"] >= GOAL_MEAN_COSINE)
        for r in fmts:
            extra = f"; {r['files']} files, {r['bytes_total'] / 1e6:.2f} MB in all (one per bucket)" if r["files"] > 1 else ""
            add(f"one model file ≤ {GOAL_FILE_MB:g} MB ({r['format']})", f"{r['bytes_largest_file'] / 1e6:.2f} MB largest{extra}",
                r["bytes_largest_file"] / 1e6 <= GOAL_FILE_MB)
        for r in fmts:
            add(f"≥ {GOAL_SPEEDUP:g}× faster than Optimum dynamic int8 teacher, real sentences ({r['format']})",
                f"{r['speedup_p50']:.2f}× at p50 ({r['speedup_mean']:.2f}× by mean)", r["speedup_p50"] >= GOAL_SPEEDUP)
    if d:
        add(f"default build ≤ {GOAL_BUILD_S / 60:g} min on {os.cpu_count()} cores (cold cache, wall clock)",
            fmt_s(d["wall_s"]) if d.get("rc") == 0 else f"failed: {short_error(d.get('error'))}", d.get("rc") == 0 and d["wall_s"] <= GOAL_BUILD_S)
    dd = builds.get("data")
    if dd:
        for r in [r for (k, f), r in rows.items() if k == "data"]:
            add(f"with in-domain --data: ≥ {GOAL_DATA_SPEARMAN_PCT:g}% of the teacher's STS-B dev Spearman ({r['format']})",
                pct_vs(r["pct_of_teacher"], GOAL_DATA_SPEARMAN_PCT), r["pct_of_teacher"] >= GOAL_DATA_SPEARMAN_PCT, build="data")
        budget = result["meta"]["data_budget_s"]
        if dd.get("rc") != 0:
            add("with in-domain --data: the build succeeds (its gates pass)", f"failed: {short_error(dd.get('error'))}", False, build="data")
        if dd.get("student_stage_s") is not None and budget:
            add(f"with in-domain --data: student stage within the {dd['budget_arg']} budget",
                f"{fmt_s(dd['student_stage_s'])}"
                + (f", {dd['student_stage_s'] - budget:.1f} s over" if dd["student_stage_s"] > budget else "")
                + f" (whole build {fmt_s(dd['wall_s'])})", dd["student_stage_s"] <= budget, build="data")
    sp = builds.get("speed")
    if sp:
        for r in [r for (k, f), r in rows.items() if k == "speed"]:
            add(f"with --min-speedup {sp['speed_factor']:g}: ≥ {GOAL_SPEEDUP:g}× faster than Optimum dynamic "
                f"int8 teacher, real sentences ({r['format']})", f"{r['speedup_p50']:.2f}× at p50; STS-B {pct(r['pct_of_teacher'])} "
                f"of the teacher, mean cosine {r['cosine_to_teacher_mean']:.4f}", r["speedup_p50"] >= GOAL_SPEEDUP, build="speed")
        if sp.get("rc") != 0:
            add("with --min-speedup: the build succeeds (its gates pass)", f"failed: {short_error(sp.get('error'))}", False, build="speed")
    c = builds.get("classifier")
    if c:
        acc = result.get("classifier")
        if acc:
            for f, m in acc["formats"].items():
                add(f"classifier: ≥ {GOAL_CLASSIFIER_PCT:g}% of the teacher's SST-2 dev accuracy ({f})", pct_vs(m["pct_of_teacher"], GOAL_CLASSIFIER_PCT),
                    m["pct_of_teacher"] >= GOAL_CLASSIFIER_PCT, build="classifier")
            for f, m in (acc.get("unused_train_rows") or {}).get("formats", {}).items():
                add(f"classifier: ≥ {GOAL_CLASSIFIER_PCT:g}% of the teacher's accuracy on unused SST-2 train rows ({f})",
                    pct_vs(m["pct_of_teacher"], GOAL_CLASSIFIER_PCT), m["pct_of_teacher"] >= GOAL_CLASSIFIER_PCT, build="classifier")
            add("classifier: the build fits a budget (the issue gives no figure; the student stage took ~30 min for 5,600 rows before)",
                f"student stage {fmt_s(c.get('student_stage_s'))}, whole build {fmt_s(c['wall_s'])} ({acc['train_rows']:,} rows)", None,
                build="classifier")
        else:
            add("classifier: the build succeeds (its gates pass)", f"failed: {short_error(c.get('error'))}", False, build="classifier")
    acc, before = result.get("classifier"), result.get("classifier_before")
    if acc and before:
        for f, m in acc["formats"].items():
            old = before["formats"].get(f)
            if old:
                add(f"classifier: no regression against the pre-#11 student recipe, SST-2 dev accuracy ({f})",
                    f"{m['accuracy']:.4f} vs {old['accuracy']:.4f}{carried(before)}", m["accuracy"] >= old["accuracy"], build="classifier")
    return out


def layer_choice(choice) -> str:
    if not isinstance(choice, dict):
        return str(choice)
    if choice.get("method") != "measured":
        return f"{choice.get('method')} layers"
    even = choice.get("evenly_spaced") or {}
    best = (choice.get("candidates") or [{}])[0]
    return (f"measured: best of {choice.get('scored')} subsets, untrained score {best.get('score')} vs {even.get('score')} for the evenly "
            f"spaced {even.get('layers')}")


def short_error(err: str | None) -> str:
    """The gate message without the report path and the 'was not changed' tail."""
    err = re.sub(r"\s*\(report: [^)]*\)", "", err or "")
    return re.sub(r";\s*\S+ was not changed\s*$", "", err).strip()


def markdown(result: dict) -> str:
    m = result["meta"]
    cs = m["code"]
    state = f"edgepack {cs['commit']}" + (f" with uncommitted changes to {', '.join(cs['uncommitted'])}" if cs["uncommitted"] else "")
    lines = [
        "# Fidelity of the android-arm64 student to its teacher (issue #11)",
        "",
        f"`{m['command']}`  ",
        f"{m['machine']}; {m['date']}; {state}; whole run {fmt_s(m['wall_s'])}"
        + (f", of which {fmt_s(m['waited_s'])} waiting for other engineers' builds/tests to finish." if m.get("waited_s") else "."),
        "",
    ]
    if m.get("smoke"):
        lines += ["**Smoke run (`--smoke`: every build with `--quick`, reduced data): checks the script, not the figures.**", ""]
    lines += [
        f"Teacher: all-MiniLM-L6-v2, sentence-transformers fp32 on the built-in model dir. STS-B dev: {m['pairs']} pairs "
        f"({m['sentences']} sentences): Spearman of the pair cosines vs the gold scores; cosine of each sentence's embedding to "
        f"the teacher's. Latency: batch 1, one thread, tokenisation included, on {m['timed']} dev sentences (mean "
        f"{m['timed_tokens_mean']:.1f} tokens), every model taking turns sentence by sentence (TFLite: the smallest bucket that fits). "
        "Builds are cold (a fresh `--cache-dir`), through the CLI, timed wall-clock; the commands are below the table.",
        "",
        "| model | format | STS-B Spearman | % of teacher | cosine to teacher mean / min | largest model file MB (all files, n) | p50 ms | speed-up vs Optimum int8 (p50 / mean) | build wall | student stage |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        b = result["builds"].get(r["build"]) or {}
        lines.append(
            f"| {r['label']}{carried(r)} | {r.get('format') or '—'} | {r['stsb_spearman']:.4f} | {pct(r['pct_of_teacher'])} | "
            f"{r['cosine_to_teacher_mean']:.4f} / {r['cosine_to_teacher_min']:.4f} | {r['bytes_largest_file'] / 1e6:.2f} "
            f"({r['bytes_total'] / 1e6:.2f}, {r['files']}) | {r['real']['p50_ms']:.2f} | {r['speedup_p50']:.2f}× / {r['speedup_mean']:.2f}× | "
            f"{fmt_s(b.get('wall_s')) if b else '—'} | {fmt_s(b.get('student_stage_s')) if b else '—'} |"
        )
    failed = [b for b in result["builds"].values() if b.get("rc") not in (0, None)]
    for b in failed:
        lines.append(f"\n**{b['label']}: the build failed (exit {b['rc']}) after {fmt_s(b['wall_s'])}, so it has no row:** {b.get('error')}")
        for f, fm in (b.get("failed_metrics") or {}).items():
            vt, vs = fm.get("vs_teacher") or {}, fm.get("vs_student_fp32") or {}
            lines.append(f"- its report ({b.get('failed_report')}), {f}: on its held-out texts, cosine vs teacher mean {vt.get('cosine_mean', float('nan')):.4f} "
                         f"/ min {vt.get('cosine_min', float('nan')):.4f}; int8 vs fp32 student min {vs.get('cosine_min', float('nan')):.4f}; "
                         f"student stage {fmt_s(b.get('student_stage_s'))}")
    c = result.get("classifier")
    if c:
        cb = result["builds"]["classifier"]
        lines += [
            "",
            f"**Classifier path.** MiniLM fine-tuned on {c['train_rows']:,} SST-2 train rows ({c['teacher_epochs']} epoch; "
            f"bench/quality.py's fine-tuning, {fmt_s(c['finetune_s'])}{' (cached)' if c['finetune_s'] < 5 else ''}), built with those rows as "
            f"`--data --task text-classification`; accuracy on the {c['dev_rows']} SST-2 dev rows (not used to build). "
            f"Build {fmt_s(cb['wall_s'])} wall, student stage {fmt_s(cb.get('student_stage_s'))}; student: {cb['student']['description']}."
            + carried(c),
            "",
            "| model | SST-2 dev accuracy | % of teacher | agreement with teacher |",
            "|---|---|---|---|",
            f"| teacher, torch fp32 | {c['teacher_accuracy']:.4f} | 100.0% | 1.0000 |",
        ]
        lines += [f"| bundle ({f}) | {v['accuracy']:.4f} | {pct(v['pct_of_teacher'])} | {v['agreement_with_teacher']:.4f} |"
                  for f, v in c["formats"].items()]
        u = c.get("unused_train_rows")
        if u:
            lines += ["", f"The same on {u['dev_rows']:,} SST-2 *train* rows used neither to fine-tune the teacher nor to build "
                      "(the rows after the build's in the same seeded shuffle; mostly short phrases, like the build's rows):", "",
                      "| model | accuracy | % of teacher | agreement with teacher |", "|---|---|---|---|",
                      f"| teacher, torch fp32 | {u['teacher_accuracy']:.4f} | 100.0% | 1.0000 |"]
            lines += [f"| bundle ({f}) | {v['accuracy']:.4f} | {pct(v['pct_of_teacher'])} | {v['agreement_with_teacher']:.4f} |"
                      for f, v in u["formats"].items()]
        cbf = result.get("classifier_before")
        if cbf:
            bb = result["builds"].get("classifier-before") or {}
            lines += ["", "The same teacher and rows built with the pre-#11 student recipe (`bench/profiles/android-arm64-before.toml`; "
                      f"build {fmt_s(bb.get('wall_s'))} wall, student: {(bb.get('student') or {}).get('description')}){carried(cbf)}:", "",
                      "| model | SST-2 dev accuracy | % of teacher | agreement with teacher |", "|---|---|---|---|"]
            lines += [f"| pre-#11 recipe bundle ({f}) | {v['accuracy']:.4f} | {pct(v['pct_of_teacher'])} | {v['agreement_with_teacher']:.4f} |"
                      for f, v in cbf["formats"].items()]
    lines += ["", "**Goals of issue #11**", "", "| build | goal | measured | met? |", "|---|---|---|---|"]
    lines += [f"| {g['build']} | {g['goal']} | {g['measured']} | {'reported' if g['met'] is None else 'met' if g['met'] else '**missed**'} |" for g in result["goals"]]
    lines += ["", "**Builds**", ""]
    for b in result["builds"].values():
        if b.get("rc") != 0:
            continue
        s = b["student"]
        dist = s.get("distillation") or {}
        phases = "; ".join(f"shipped step {p.get('best_step')} of {p.get('steps')} (held-out score {p.get('best_score')}, ended by {p.get('stopped')})"
                           for p in s.get("phases") or [] if p.get("best_step") is not None)
        cont = b.get("contention") or {}
        busy = cont.get("others_during") or cont.get("others_at_start")
        lines.append(
            f"- {b['label']}: `{b['command']}`: {fmt_s(b['wall_s'])} wall ("
            + ", ".join(f"{k} {v:.0f} s" for k, v in (b.get("timings_s") or {}).items() if v >= 0.5) + "); "
            f"student {s['description']} (teacher layers {s.get('teacher_layers_kept')}, {layer_choice(s.get('layer_choice'))}); "
            + (f"shape search: the teacher timed at {s['shape_search']['latency']['teacher_ms']:.3f} ms, so a budget of "
               f"{s['shape_search']['latency_budget_ms']:.3f} ms; the chosen shape at {s['shape_search']['chosen']['latency_ms']} ms "
               f"(ONNX, {s['shape_search']['latency'].get('tokens', 32)} tokens, untrained candidates); "
               if (s.get("shape_search") or {}).get("latency") else "")
            + 
            f"distilled on {dist.get('distilled_texts'):,} texts, a sample of {dist.get('texts'):,} training texts"
            + (f" (from {b['texts']:,} --data sentences)" if b.get("texts") else "")
            + f" + {dist.get('augmented_texts'):,} augmented"
            + (f" + {dist['filled_texts']:,} built-in general texts (fill)" if dist.get("filled_texts") else "")
            + (f", {phases}" if phases else "")
            + (f". **Other work ran alongside** ({len(busy)} process(es), load avg max {cont.get('loadavg_1m_max')}): its time is an over-estimate." if busy
               else f". Nothing else ran alongside (load avg max {cont.get('loadavg_1m_max')}).")
        )
    if m.get("latency_contention"):
        lc = m["latency_contention"]
        if lc.get("others_during") or lc.get("others_at_start"):
            lines.append(f"- Latency: other work ran during the timing (load avg max {lc.get('loadavg_1m_max')}); interleaving spreads it over every row alike.")
    lines += [
        "",
        "Notes. **x86 differs from ARM**: these latencies come from this x86-64 machine (AVX2); phones run LiteRT's XNNPACK / "
        "KleidiAI and onnxruntime's ARM kernels, so measure speed-ups on the device (`edgepack bench` runs there) before quoting them. "
        "TFLite ships one file with a static-shape signature per sequence bucket (32/64/128; issue #12, bundle format 2): the size "
        "column gives the largest model file and, in brackets, all model files of that format. MB = 10^6 bytes, as the build's `max_size_mb` gate counts. "
        "% of teacher = the row's Spearman / the torch teacher's. Speed-ups compare against Optimum's "
        "`AutoQuantizationConfig.arm64(is_static=False)` dynamic int8 teacher (per-channel) with mean pooling in numpy. "
        "Only dev data is scored; the in-domain build uses STS-B and SST-2 *train* text.",
    ]
    if result["builds"].get("before"):
        lines.append(
            "\nThe before row is the pre-#11 default student (`bench/profiles/android-arm64-before.toml`: 3 evenly spaced layers, "
            "9/12 heads, FFN 768, 8k pruned vocabulary, int8 embeddings) built by today's code; its old `epochs = 12` is pinned as "
            "`steps = 1500`, the training it got on the 2k-sentence corpus, because 12 epochs of today's 55k-line corpus would take hours."
        )
    return "\n".join(lines) + "\n"


def carry_previous(path: Path, builds: dict, rows: list, accuracies: dict) -> None:
    """`--keep-previous`: the builds this run skipped, their rows and the classifiers' accuracy, copied from
    the previous results, each marked `carried_from` (that run's commit, date and command) so the table says
    which figures were measured when. Latency ratios of carried rows are against that run's Optimum row."""
    if not path.is_file():
        return
    old = json.loads(path.read_text(encoding="utf-8"))
    m = old["meta"]
    origin = {"commit": m["code"]["commit"], "date": m["date"], "command": m["command"]}
    for key, rec in old["builds"].items():
        if key in builds:
            continue
        builds[key] = {**rec, "carried_from": rec.get("carried_from") or origin}
        rows += [{**r, "carried_from": r.get("carried_from") or origin} for r in old["rows"] if r["build"] == key]
        field = ACCURACY_FIELDS.get(key)
        if field and old.get(field) and accuracies.get(field) is None:
            accuracies[field] = {**old[field], "carried_from": old[field].get("carried_from") or origin}


ACCURACY_FIELDS = {"classifier": "classifier", "classifier-before": "classifier_before"}  # build key -> result field


def carried(rec: dict) -> str:
    c = rec.get("carried_from")
    return f" (carried over: measured at {c['commit']}, {c['date']})" if c else ""


# -- main ---------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data", help="STS-B and SST-2 TSVs (default ../shared/data)")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "edgepack-bench", help="bench cache: derived data, bundles, baselines")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results directory (fidelity.json, fidelity.md)")
    ap.add_argument("--stsb-limit", type=int, default=0, help="score only the first N STS-B dev pairs (0 = all 1,500)")
    ap.add_argument("--timed", type=int, default=300, help="dev sentences timed at batch 1 (default 300)")
    ap.add_argument("--skip-default", action="store_true", help="no default build (with --keep-previous: keep the last one's rows)")
    ap.add_argument("--skip-before", action="store_true", help="no 'before' row (the pre-#11 default student)")
    ap.add_argument("--skip-data", action="store_true", help="no in-domain --data build")
    ap.add_argument("--skip-classifier", action="store_true", help="no SST-2 classifier build")
    ap.add_argument("--skip-classifier-before", action="store_true", help="no SST-2 classifier built with the pre-#11 student recipe")
    ap.add_argument("--skip-speed", action="store_true", help="no --min-speedup build")
    ap.add_argument("--speed-factor", type=float, default=GOAL_SPEEDUP,
                    help=f"the speed build's --min-speedup (default {GOAL_SPEEDUP:g})")
    ap.add_argument("--keep-previous", action="store_true",
                    help="carry the builds this run skips (with their rows) over from the existing fidelity.json in --out, "
                         "each marked with the commit and date of the run that measured it")
    ap.add_argument("--data-budget", default="15m", help="--budget of the in-domain --data build (default 15m)")
    ap.add_argument("--data-limit", type=int, default=0, help="at most N in-domain texts (a seeded sample; 0 = all)")
    ap.add_argument("--classifier-train", type=int, default=5600, help="SST-2 train rows: fine-tune the teacher, then --data (default 5600)")
    ap.add_argument("--classifier-epochs", type=int, default=1, help="fine-tuning epochs of the classifier teacher (default 1)")
    ap.add_argument("--classifier-dev-limit", type=int, default=0, help="score only the first N SST-2 dev rows (0 = all 872)")
    ap.add_argument("--wait-max", type=float, default=1800, help="seconds to wait for other builds/pytest before each timed part (default 1800)")
    ap.add_argument("--keep-work", action="store_true", help="keep each build's fresh --cache-dir (removed by default)")
    ap.add_argument("--smoke", action="store_true", help="check the script: every build --quick, 200 pairs, 40 timed, small data")
    ap.add_argument("--dry-run", action="store_true", help="print the builds it would run and exit")
    ap.add_argument("--render", type=Path, default=None, metavar="JSON", help="only rewrite fidelity.md (in --out) from a fidelity.json")
    args = ap.parse_args(argv)
    if args.render:
        result = json.loads(args.render.read_text(encoding="utf-8"))
        result["goals"] = goals(result)
        args.out.mkdir(parents=True, exist_ok=True)
        baselines.write_atomic(args.out / "fidelity.md", markdown(result))
        print(markdown(result))
        return 0
    command = " ".join(["python bench/fidelity.py", shlex.join(argv if argv is not None else sys.argv[1:])]).strip()
    if args.smoke:
        args.stsb_limit = args.stsb_limit or 200
        args.timed = min(args.timed, 40)
        args.data_limit = args.data_limit or 3000
        args.classifier_train = min(args.classifier_train, 1000)
        args.classifier_dev_limit = args.classifier_dev_limit or 200
        if args.data_budget == "15m":
            args.data_budget = "2m"

    from edgepack.config import parse_budget

    try:
        budget_steps, budget_s = parse_budget(args.data_budget)
    except Exception as exc:  # noqa: BLE001  (edgepack's own message)
        print(f"error: --data-budget {args.data_budget!r}: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    stsb = args.data_dir / "stsb" / "dev.tsv"
    for need in [stsb, args.data_dir / "stsb" / "train.tsv", args.data_dir / "sst2" / "train.tsv", args.data_dir / "sst2" / "dev.tsv"]:
        if not need.is_file():
            print(f"error: {need} not found; pass --data-dir (the folder with stsb/ and sst2/)", file=sys.stderr)
            return 2
    args.cache.mkdir(parents=True, exist_ok=True)
    run = args.cache / "fidelity"
    run.mkdir(exist_ok=True)

    def build(key, label, target, extra=()):
        return Build(key, label, target, list(extra), run / f"{key}-bundle", run / f"{key}-cache")

    plan = [] if args.skip_default else [build("default", "edgepack android-arm64 default (after)", TARGET)]
    if not args.skip_before:
        plan.append(build("before", "previous default (before, bench/profiles)", str(BEFORE_PROFILE.relative_to(REPO))))
    data_note = None
    if not args.skip_data:
        data_note = "(written at run time)"
        plan.append(build("data", f"android-arm64 + in-domain --data, --budget {args.data_budget}", TARGET,
                          ["--data", "<stsb-sst2-train-text.txt>", "--budget", args.data_budget]))
    if not args.skip_classifier:
        plan.append(build("classifier", "SST-2 classifier", TARGET,
                          ["--model", "<sst2-teacher>", "--data", "<sst2-train-labelled.tsv>", "--task", "text-classification"]))
    if not args.skip_classifier_before:
        plan.append(build("classifier-before", "SST-2 classifier, pre-#11 student recipe (bench/profiles)", str(BEFORE_PROFILE.relative_to(REPO)),
                          ["--model", "<sst2-teacher>", "--data", "<sst2-train-labelled.tsv>", "--task", "text-classification"]))
    if not args.skip_speed:
        plan.append(build("speed", f"android-arm64 --min-speedup {args.speed_factor:g}", TARGET,
                          ["--min-speedup", f"{args.speed_factor:g}"]))
    if args.dry_run:
        for b in plan:
            print(b.command(args.smoke))
        print(f"# data {data_note or 'skipped'}; cache {run}; results {args.out}")
        return 0

    t_start = time.perf_counter()
    builds: dict[str, dict] = {}
    classifier_teacher = None
    classifier_meta = {}
    waited = 0.0
    for b in plan:
        if b.key == "data":
            path, n = in_domain_text(args.data_dir, args.cache, args.data_limit)
            b.extra[1] = str(path)
            log(f"in-domain text: {n} sentences in {path}")
        if b.key in ACCURACY_FIELDS:
            if classifier_teacher is None:
                waited += wait_idle("classifier fine-tuning", args.wait_max)["waited_s"]
                log(f"classifier teacher: fine-tuning MiniLM on {args.classifier_train} SST-2 train rows (cached)")
                classifier_teacher, tsv, n_rows, ft_s = classifier_data(args.cache, args.classifier_train, args.classifier_epochs)
                classifier_meta = {"train_rows": n_rows, "teacher_epochs": args.classifier_epochs, "finetune_s": ft_s,
                                   "teacher_dir": str(classifier_teacher)}
            b.extra[1], b.extra[3] = str(classifier_teacher), str(tsv)
        rec = run_build(b, args.smoke, args.wait_max, args.keep_work)
        if b.key == "speed":
            rec["speed_factor"] = args.speed_factor
        if b.key == "data":
            rec["budget_arg"] = args.data_budget
            rec["texts"] = n
        builds[b.key] = rec

    # -- quality and latency, side by side ------------------------------------------------------
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    from tokenizers import Tokenizer

    from edgepack.teacher import builtin_model_path

    teacher_path = builtin_model_path()
    pairs = baselines.read_stsb(stsb, args.stsb_limit or None)
    sentences = list(dict.fromkeys(s for a, b_, _ in pairs for s in (a, b_)))
    index = {s: i for i, s in enumerate(sentences)}
    timed = sentences[:: max(1, len(sentences) // args.timed)][: args.timed]
    tok_path = teacher_path / "tokenizer.json"
    tok = Tokenizer.from_file(str(tok_path))
    tok.no_padding()
    baselines.TEACHER_TOKENIZER = tok
    timed_tokens = float(np.mean([len(tok.encode(s).ids) for s in timed]))

    onnx = baselines.optimum_models(teacher_path, args.cache / "baselines")
    specs = [
        ("teacher", None, lambda: baselines.TorchTeacher(teacher_path), "teacher, torch fp32 (sentence-transformers)"),
        ("optimum-int8", None, lambda: baselines.OnnxMeanPool("teacher, Optimum arm64 dynamic int8 (per-channel)", onnx["int8-per-channel"], tok_path),
         "teacher, Optimum arm64 dynamic int8 (per-channel)"),
    ]
    for key in ("default", "before", "data", "speed"):
        rec = builds.get(key)
        if not rec or rec.get("rc") != 0:
            continue
        manifest = json.loads((Path(rec["bundle"]) / "edgepack.json").read_text(encoding="utf-8"))
        for fmt in sorted({a["format"] for a in manifest["artifacts"]}, key=lambda f: f != manifest.get("default_format")):
            specs.append((key, fmt, lambda r=rec, f=fmt: baselines.BundleRow(r["label"], Path(r["bundle"]), f), rec["label"]))

    rows, models, teacher_emb = [], [], None
    for key, fmt, make, label in specs:
        log(f"quality: {label}" + (f" ({fmt})" if fmt else ""))
        model = make()
        if teacher_emb is None:
            teacher_emb = baselines.normalise(model.embed(sentences))
        q = baselines.quality(model, sentences, pairs, index, teacher_emb)
        rows.append({"build": key, "format": fmt, "label": label, **q})
        models.append(model)
        log(f"  Spearman {q['stsb_spearman']:.4f}, cosine to teacher {q['cosine_to_teacher_mean']:.4f} / {q['cosine_to_teacher_min']:.4f}, "
            f"largest file {q['bytes_largest_file'] / 1e6:.2f} MB")
    latency_idle = wait_idle("latency", args.wait_max)
    log(f"latency: {len(timed)} sentences x {len(models)} models, interleaved")
    with Sampler() as sampler:
        lat = baselines.interleaved_latency(models, timed, "one")
    teacher_rho = rows[0]["stsb_spearman"]
    opt = lat[1]
    for r, l_ in zip(rows, lat):
        r["real"] = l_
        r["pct_of_teacher"] = 100 * r["stsb_spearman"] / teacher_rho
        r["speedup_p50"] = opt["p50_ms"] / l_["p50_ms"]
        r["speedup_mean"] = opt["mean_ms"] / l_["mean_ms"]
    del models

    accuracies = {}
    dev = read_tsv(args.data_dir / "sst2" / "dev.tsv")
    dev = dev[: args.classifier_dev_limit] if args.classifier_dev_limit else dev
    for key, field in ACCURACY_FIELDS.items():
        crec = builds.get(key)
        if not (crec and crec.get("rc") == 0):
            continue
        log(f"{key}: SST-2 dev accuracy, teacher vs bundle")
        acc = {**classifier_meta, **classifier_accuracy(classifier_teacher, Path(crec["bundle"]), dev)}
        # The issue's own check: train-distribution rows that neither fine-tuned the teacher nor built the
        # bundle (the next rows of the same seeded shuffle). Dev (full sentences; the train rows are mostly
        # short phrases) stays the stricter figure the goal is judged on.
        import quality

        unused = quality.sst2_teacher_rows(0)[classifier_meta["train_rows"]:][:HELD_OUT_TRAIN_ROWS]
        acc["unused_train_rows"] = classifier_accuracy(classifier_teacher, Path(crec["bundle"]), unused)
        accuracies[field] = acc

    if args.keep_previous:
        carry_previous(args.out / "fidelity.json", builds, rows, accuracies)

    result = {
        "meta": {
            "command": command,
            "machine": machine(),
            "cpu_count": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d"),
            "code": code_state(),
            "smoke": args.smoke,
            "pairs": len(pairs),
            "sentences": len(sentences),
            "timed": len(timed),
            "timed_tokens_mean": timed_tokens,
            "threads": 1,
            "stsb": str(stsb),
            "data_budget_s": budget_s or None,
            "data_budget_steps": budget_steps or None,
            "latency_contention": {**latency_idle, **sampler.summary()},
            "wall_s": round(time.perf_counter() - t_start, 1),
            "waited_s": round(latency_idle["waited_s"] + waited + sum(b["contention"]["waited_s"] for b in builds.values() if not b.get("carried_from")), 1),
            "arm_note": "x86 numbers differ from ARM; measure on the device",
        },
        "builds": builds,
        "rows": rows,
        "classifier": accuracies.get("classifier"),
        "classifier_before": accuracies.get("classifier_before"),
    }
    result["goals"] = goals(result)
    args.out.mkdir(parents=True, exist_ok=True)
    baselines.write_atomic(args.out / "fidelity.json", json.dumps(result, indent=2, default=str) + "\n")
    md = markdown(result)
    baselines.write_atomic(args.out / "fidelity.md", md)
    print(md)
    return 0 if all(b.get("rc") == 0 for b in builds.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
