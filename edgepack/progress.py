"""Progress reporting that stages can use without knowing about rich or the CLI.

`task(name, total)` is a context manager giving a handle with `advance(n)`, `update(**kw)` and
`set_metrics(**kw)` (figures the task reports as it goes, e.g. `loss=0.123, score=0.85`). The CLI
installs a rich-backed reporter on a terminal and `PlainReporter` (flushed lines a log file receives as
they happen) when stderr is not one; library use and tests get the silent default.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import sys
import time


class _Silent:
    def advance(self, n: float = 1) -> None:
        pass

    def update(self, **_) -> None:
        pass

    def set_metrics(self, **_) -> None:
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


def metrics_text(metrics: dict) -> str:
    """`loss=0.1235 score=0.85`: floats to 4 significant digits, in the order they were first set."""
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())


def clock_text(seconds: float) -> str:
    """h:mm:ss, or m:ss under an hour."""
    s = int(max(seconds, 0) + 0.5)
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


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
        shown = {"description": description, "metrics": {}}

        class _Handle:
            def advance(self, n: float = 1) -> None:
                progress.advance(tid, n)

            def update(self, **kw) -> None:
                if "description" in kw:
                    shown["description"] = kw["description"]
                    kw["description"] = f"  {kw['description']}  {metrics_text(shown['metrics'])}".rstrip()
                progress.update(tid, **kw)

            def set_metrics(self, **kw) -> None:
                shown["metrics"].update(kw)
                progress.update(tid, description=f"  {shown['description']}  {metrics_text(shown['metrics'])}")

        try:
            yield _Handle()
        finally:
            if total is not None:
                progress.update(tid, completed=total)
            progress.stop_task(tid)


class PlainReporter(Reporter):
    """Plain lines for logs and CI (stderr is not a terminal). A rich live display redraws in place and
    reaches a redirected stream only when the build ends (issue #11), so this writes and flushes:

        [0:03] load teacher: started
        [0:04] load teacher: done in 1.2 s
        [0:04]   distilling 3-layer student: started (0/1500)
        [0:14]   distilling 3-layer student: 120/1500 (8.0%), elapsed 0:10, ETA 1:55, loss=0.1234 score=0.85
        [2:08]   distilling 3-layer student: done 1500/1500 (100.0%) in 2:04, loss=0.0521 score=0.91

    A sub-task prints a line when it starts, at most every `interval` seconds while it advances or
    reports metrics, and when it ends. The ETA uses the speed over the last `window` seconds (as rich's
    bar does): a task whose parts run at different speeds (a fast teacher pass, slower training steps)
    gets an estimate from the part it is in. `clock` is injectable so tests need not wait.
    """

    def __init__(self, stream=None, interval: float = 10.0, clock=time.monotonic, window: float = 30.0):
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.window = window
        self.clock = clock
        self.started = clock()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def line(self, text: str) -> None:
        self.stream.write(f"[{clock_text(self.clock() - self.started)}] {text}\n")
        self.stream.flush()

    def stage_started(self, name: str) -> None:
        self.line(f"{name}: started")

    def stage_finished(self, name: str, seconds: float) -> None:
        self.line(f"{name}: done in {seconds:.1f} s")

    @contextlib.contextmanager
    def task(self, description: str, total: float | None = None):
        handle = _PlainTask(self, description, total)
        ok = False
        try:
            yield handle
            ok = True
        finally:
            handle.finish(ok)


class _PlainTask:
    def __init__(self, reporter: PlainReporter, description: str, total: float | None):
        self.reporter, self.description, self.total = reporter, description, total
        self.completed = 0.0
        self.metrics: dict = {}
        self.started = self.last = reporter.clock()
        self.samples = collections.deque([(self.started, 0.0)])  # (time, completed) over the last `window` s
        self._print(f"started ({self._count()})")

    def advance(self, n: float = 1) -> None:
        self.completed += n
        self._maybe_print()

    def update(self, **kw) -> None:
        self.description = kw.get("description", self.description)
        self.total = kw.get("total", self.total)
        self.completed = kw.get("completed", self.completed) + kw.get("advance", 0)
        self._maybe_print()

    def set_metrics(self, **kw) -> None:
        self.metrics.update(kw)
        self._maybe_print()

    def finish(self, ok: bool) -> None:
        elapsed = self.reporter.clock() - self.started
        word = "done" if ok else "stopped at"
        self._print(", ".join(filter(None, [f"{word} {self._count()} in {clock_text(elapsed)}", metrics_text(self.metrics)])))

    def _count(self) -> str:
        if not self.total:
            return f"{self.completed:.0f}"
        return f"{self.completed:.0f}/{self.total:.0f}" + (f" ({100 * self.completed / self.total:.1f}%)" if self.completed else "")

    def _maybe_print(self) -> None:
        now = self.reporter.clock()
        self.samples.append((now, self.completed))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.reporter.window:
            self.samples.popleft()
        if now - self.last < self.reporter.interval:
            return
        elapsed = now - self.started
        parts = [self._count(), f"elapsed {clock_text(elapsed)}"]
        (t0, done0), (t1, done1) = self.samples[0], self.samples[-1]
        if self.total and done1 > done0 and t1 > t0:
            parts.append(f"ETA {clock_text((t1 - t0) / (done1 - done0) * max(self.total - self.completed, 0))}")
        parts.append(metrics_text(self.metrics))
        self._print(", ".join(filter(None, parts)))

    def _print(self, text: str) -> None:
        self.last = self.reporter.clock()
        self.reporter.line(f"  {self.description}: {text}")
