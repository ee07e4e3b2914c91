"""`edgepack check`: prove a bundle is exactly what was validated (sha256) and still reproduces its
golden cases through the runtime shipped inside it."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from .errors import BundleFormatError, UsageError
from .golden import golden_matches, golden_runs
from .runtime import edgepack_runtime as rt


@dataclass
class Case:
    name: str
    passed: bool
    message: str = ""
    group: str = "integrity"


@dataclass
class CheckResult:
    bundle: Path
    cases: list[Case] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.cases)

    @property
    def failures(self) -> list[Case]:
        return [c for c in self.cases if not c.passed]


def _load_shipped_runtime(root: Path):
    """Import the bundle's own edgepack_runtime.py (verified by sha256 first), so we test what apps vendor."""
    path = root / "edgepack_runtime.py"
    if not path.is_file():
        return rt
    name = f"_edgepack_bundle_runtime_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def check_integrity(root: Path, manifest: dict) -> list[Case]:
    cases = []
    listed = set()
    for rel, meta in sorted(manifest.get("files", {}).items()):
        listed.add(rel)
        try:
            full = rt.confined(root, rel)
        except rt.BundleFormatError as exc:
            cases.append(Case(f"file {rel}", False, str(exc)))
            continue
        if not full.is_file():
            cases.append(Case(f"file {rel}", False, "missing"))
        elif rt.sha256_file(full) != meta.get("sha256"):
            cases.append(Case(f"file {rel}", False, "sha256 differs from the manifest"))
        else:
            cases.append(Case(f"file {rel}", True, "sha256 ok"))
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and rel != rt.MANIFEST and rel not in listed and "__pycache__" not in p.parts:
            cases.append(Case(f"file {rel}", False, "not listed in the manifest (extra file)"))
    for art in manifest.get("artifacts", []):
        if art.get("path") not in listed:
            cases.append(Case(f"artifact {art.get('path')}", False, "artifact not covered by the file table"))
    return cases


def check_golden(root: Path, manifest: dict, runtime) -> list[Case]:
    cases = []
    task = manifest["task"]
    tolerance = manifest.get("golden_tolerance", {})
    golden = manifest.get("golden") or []
    if len(golden) < 1:
        return [Case("golden cases", False, "manifest has no golden cases", "golden")]
    formats = sorted({a["format"] for a in manifest["artifacts"]})
    for fmt in formats:
        try:
            bundle = runtime.load_bundle(root, format=fmt, threads=1)
        except Exception as exc:  # any failure to load is a failed check, reported in one line
            cases.append(Case(f"{fmt}: load", False, f"{type(exc).__name__}: {exc}", "golden"))
            continue
        for i, case in enumerate(golden):
            label = f"{fmt}: golden {i} {case['text'][:40]!r}"
            ids = bundle.encode([case["text"]])[0]
            if ids != case["ids"]:
                cases.append(Case(label, False, "tokenisation differs from the golden token ids", "golden"))
                continue
            for signature, expected in golden_runs(case, fmt):
                try:
                    got = bundle.run_ids([case["ids"]], signature=signature)[0]
                except Exception as exc:  # e.g. a signature missing from the model: one failed case, one line
                    cases.append(Case(f"{label} {signature}", False, f"{type(exc).__name__}: {exc}", "golden"))
                    continue
                ok, detail = golden_matches(task, expected, got, tolerance)
                cases.append(Case(f"{label} {signature}" if signature else label, ok, detail, "golden"))
    return cases


def check_parity(root: Path, manifest: dict, runtime, data=(), teacher=None, allow_pickle: bool = False,
                 text_column=None, label_column=None) -> list[Case]:
    """Parity on the user's data against the teacher, with the tolerances recorded in the manifest."""
    from .measure import parity
    from .measure.references import teacher_outputs
    from .teacher import builtin_model_path

    if data:
        pdata = parity.load_parity_data(data, manifest.get("labels") or (), text_column, label_column)
    else:  # --teacher alone: the golden texts are the data
        pdata = parity.ParityData(tuple(c["text"] for c in manifest.get("golden") or [] if c["text"]), source="golden cases")
        if not pdata.texts:
            return [Case("parity data", False, "no --data and no golden texts in the manifest", "parity")]
    if teacher is None and data and manifest.get("provenance", {}).get("teacher_builtin"):
        teacher = "builtin"
    if teacher is None:
        raise UsageError("--data needs --teacher DIR: this bundle was not built from the built-in teacher")
    tdir = builtin_model_path() if teacher == "builtin" else Path(teacher)
    if not tdir.is_dir():
        raise UsageError(f"--teacher {teacher}: no such directory")
    ref = teacher_outputs(tdir, manifest["task"], pdata.texts, int(manifest["tokenizer"]["max_length"]), allow_pickle)
    cases = []
    for fmt in sorted({a["format"] for a in manifest["artifacts"]}):
        try:
            bundle = runtime.load_bundle(root, format=fmt, threads=1)
        except Exception as exc:  # a bundle that cannot load fails the gate in one line
            cases.append(Case(f"{fmt}: load", False, f"{type(exc).__name__}: {exc}", "parity"))
            continue
        cases += [Case(name, ok, msg, "parity") for name, ok, msg in parity.parity_cases(bundle, manifest, pdata, ref)]
    if not cases:
        cases.append(Case("parity", False, f"nothing to gate on {pdata.source}: pass --teacher DIR, or labelled/scored data", "parity"))
    return cases


def check_bundle(path, data=(), teacher=None, allow_pickle: bool = False, text_column=None, label_column=None) -> CheckResult:
    """Integrity and golden cases always; with `data` and/or `teacher`, parity cases too."""
    root = Path(path)
    for p in data or ():
        if not Path(p).is_file():
            raise UsageError(f"--data {p}: no such file")
    if teacher not in (None, "builtin") and not Path(teacher).is_dir():
        raise UsageError(f"--teacher {teacher}: no such directory")
    if not root.is_dir():
        raise UsageError(f"{path}: no such bundle directory")
    if not (root / rt.MANIFEST).is_file():
        raise UsageError(f"{path}: not an edgepack bundle (no {rt.MANIFEST})")
    result = CheckResult(root)
    try:
        manifest = rt.read_manifest(root)
    except (rt.NewerFormatError, rt.OlderFormatError) as exc:
        # Nothing is wrong with the bundle: this edgepack reads another format version (exit 2, as predict).
        # A format-1 bundle (one .tflite per bucket) is refused, not read: rebuild it (issue #12).
        raise BundleFormatError(str(exc)) from None
    except rt.BundleFormatError as exc:
        result.cases.append(Case("manifest", False, str(exc)))
        return result
    result.cases.append(Case("manifest", True, f"format {manifest['format_version']}, task {manifest['task']}"))
    result.cases += check_integrity(root, manifest)
    if not result.passed:
        return result  # never execute or load files that failed verification
    runtime = _load_shipped_runtime(root)
    result.cases += check_golden(root, manifest, runtime)
    if data or teacher is not None:
        result.cases += check_parity(root, manifest, runtime, tuple(data or ()), teacher, allow_pickle, text_column, label_column)
    return result


def junit_xml(result: CheckResult, extra_suites: dict | None = None) -> str:
    groups: dict[str, list[Case]] = {}
    for c in result.cases:
        groups.setdefault(c.group, []).append(c)
    out = ['<?xml version="1.0" encoding="UTF-8"?>', f"<testsuites name={quoteattr('edgepack check ' + str(result.bundle))}>"]
    for group, cases in groups.items():
        fails = sum(not c.passed for c in cases)
        out.append(f'  <testsuite name={quoteattr("edgepack." + group)} tests="{len(cases)}" failures="{fails}" errors="0">')
        for c in cases:
            out.append(f"    <testcase classname={quoteattr('edgepack.' + group)} name={quoteattr(c.name)}>")
            if not c.passed:
                out.append(f"      <failure message={quoteattr(c.message)}>{escape(c.message)}</failure>")
            else:
                out.append(f"      <system-out>{escape(c.message)}</system-out>")
            out.append("    </testcase>")
        out.append("  </testsuite>")
    out.append("</testsuites>")
    return "\n".join(out) + "\n"


__all__ = ["check_bundle", "CheckResult", "Case", "junit_xml", "BundleFormatError"]
