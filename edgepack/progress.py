"""Progress reporting that stages can use without knowing about rich or the CLI.

`task(name, total)` returns an object with `advance(n)`; the CLI installs a rich-backed reporter,
library use and tests get the silent default.
"""

from __future__ import annotations

import contextlib
import contextvars


class _Silent:
    def advance(self, n: float = 1) -> None:
        pass

    def update(self, **_) -> None:
        pass


class Reporter:
    def task(self, description: str, total: float | None = None):
        return contextlib.nullcontext(_Silent())

    def stage_started(self, name: str) -> None:
        pass

    def stage_finished(self, name: str, seconds: float) -> None:
        pass


_current: contextvars.ContextVar[Reporter] = contextvars.ContextVar("edgepack_reporter", default=Reporter())


def current() -> Reporter:
    return _current.get()


@contextlib.contextmanager
def using(reporter: Reporter):
    token = _current.set(reporter)
    try:
        yield reporter
    finally:
        _current.reset(token)


class RichReporter(Reporter):
    """One line per stage with a spinner and its time; sub-tasks get a bar with an ETA."""

    def __init__(self, console):
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.console = console
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f}" if False else ""),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._stage = None

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def stage_started(self, name: str) -> None:
        self._stage = self.progress.add_task(f"[bold]{name}", total=None)

    def stage_finished(self, name: str, seconds: float) -> None:
        if self._stage is not None:
            self.progress.update(self._stage, description=f"[green]✓[/] {name} ({seconds:.1f}s)", total=1, completed=1)
            self.progress.stop_task(self._stage)

    @contextlib.contextmanager
    def task(self, description: str, total: float | None = None):
        tid = self.progress.add_task(f"  {description}", total=total)
        progress = self.progress

        class _Handle:
            def advance(self, n: float = 1) -> None:
                progress.advance(tid, n)

            def update(self, **kw) -> None:
                progress.update(tid, **kw)

        try:
            yield _Handle()
        finally:
            if total is not None:
                progress.update(tid, completed=total)
            progress.stop_task(tid)
