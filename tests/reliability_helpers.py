"""Shared assertions for the robustness matrix (tests/test_reliability*.py, docs/reliability.md).

Every failing case must end with exactly one `error:` line on stderr, the documented exit code, no
traceback, no staging/lock leftovers next to --out, and the previous bundle at --out byte-identical.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

LEFTOVER_MARKS = (".edgepack-tmp-", ".old-", ".edgepack.lock")


def snapshot(root: Path) -> dict | None:
    """relative path -> sha256 of every file under root; None when root does not exist."""
    root = Path(root)
    if not root.exists():
        return None
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in Path(parent).iterdir() if any(m in p.name for m in LEFTOVER_MARKS))


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def assert_clean_failure(exit_code: int, stderr: str, expected_code: int, needle: str, out: Path | None = None,
                         before: dict | None = None, stdout: str = "") -> str:
    assert "Traceback" not in stderr and "Traceback" not in stdout, stderr[-2000:]
    lines = error_lines(stderr)
    assert len(lines) == 1, f"expected one error line, got {lines!r}\n{stderr[-2000:]}"
    assert needle.lower() in lines[0].lower(), lines[0]
    assert exit_code == expected_code, f"exit {exit_code} != {expected_code}: {lines[0]}"
    if out is not None:
        assert snapshot(out) == before, "the previous bundle at --out changed"
        assert leftovers(Path(out).parent) == [], leftovers(Path(out).parent)
    return lines[0]
