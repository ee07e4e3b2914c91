"""Progress that reaches a log (issue #11): plain flushed lines when stderr is not a terminal, a line per
stage, and periodic sub-task lines with completed/total, ETA and the metrics a task reports."""

from __future__ import annotations

import io

from click.testing import CliRunner

from edgepack import progress
from edgepack.cli import main
from edgepack.progress import PlainReporter, RichReporter


class FlushCounter(io.StringIO):
    def __init__(self):
        super().__init__()
        self.flushed_lines: list[int] = []

    def flush(self):
        self.flushed_lines.append(self.getvalue().count("\n"))
        super().flush()


def fake_clock():
    now = [0.0]
    return now, (lambda: now[0])


def test_plain_reporter_prints_stages_and_periodic_task_lines_with_eta_and_metrics():
    now, clock = fake_clock()
    out = FlushCounter()
    reporter = PlainReporter(out, interval=10, clock=clock)
    reporter.stage_started("build student")
    with reporter.task("distilling 3-layer student", total=200) as bar:
        for step in range(1, 201):
            now[0] += 0.25  # 4 steps a second: 50 s in all
            bar.advance(1)
            bar.set_metrics(loss=1.0 / step, score=0.85)
    reporter.stage_finished("build student", 50.04)
    lines = out.getvalue().splitlines()
    assert lines[0] == "[0:00] build student: started"
    assert lines[1] == "[0:00]   distilling 3-layer student: started (0/200)"
    periodic = [line for line in lines if "ETA" in line]
    assert len(periodic) == 5  # every 10 s of a 50 s task, not every step
    # printed by advance() of step 40, before step 40 reported its loss (1/39)
    assert periodic[0] == "[0:10]   distilling 3-layer student: 40/200 (20.0%), elapsed 0:10, ETA 0:40, loss=0.02564 score=0.85"
    assert "ETA 0:00" in periodic[-1] and "200/200 (100.0%)" in periodic[-1]
    assert lines[-2] == "[0:50]   distilling 3-layer student: done 200/200 (100.0%) in 0:50, loss=0.005 score=0.85"
    assert lines[-1] == "[0:50] build student: done in 50.0 s"
    assert out.flushed_lines == list(range(1, len(lines) + 1))  # each line flushed as it is written


def test_plain_task_without_total_and_a_failed_task_say_so():
    now, clock = fake_clock()
    out = io.StringIO()
    reporter = PlainReporter(out, interval=10, clock=clock)
    try:
        with reporter.task("scoring heads") as bar:
            now[0] += 12
            bar.advance(3)
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    lines = out.getvalue().splitlines()
    assert lines == ["[0:00]   scoring heads: started (0)", "[0:12]   scoring heads: 3, elapsed 0:12",
                     "[0:12]   scoring heads: stopped at 3 in 0:12"]


def test_set_metrics_is_a_no_op_for_the_silent_reporter_and_shown_by_rich():
    with progress.current().task("silent", total=3) as bar:  # library use: the silent default
        bar.advance(1)
        bar.set_metrics(loss=0.5)
    from rich.console import Console

    reporter = RichReporter(Console(file=io.StringIO(), force_terminal=False))
    with reporter, reporter.task("distilling", total=10) as bar:
        bar.set_metrics(loss=0.123456, score=0.85)
        (task,) = reporter.progress.tasks
        assert task.description == "  distilling  loss=0.1235 score=0.85"
        bar.update(description="recovering")
        assert reporter.progress.tasks[0].description == "  recovering  loss=0.1235 score=0.85"


def test_cli_build_prints_a_line_per_stage_when_stderr_is_not_a_terminal(tiny_model, tiny_data, cache_dir, tmp_path):
    from edgepack.pipeline import STAGES
    from edgepack.testing import tiny_target_toml

    target = tmp_path / "onnx.toml"
    target.write_text(tiny_target_toml(formats=("onnx",), buckets=(16,)))
    result = CliRunner().invoke(main, ["build", "--target", str(target), "--model", str(tiny_model), "--data", str(tiny_data),
                                       "--out", str(tmp_path / "out"), "--cache-dir", str(cache_dir)])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    for name, _ in STAGES:
        started = lines.index(next(line for line in lines if line.endswith(f"] {name}: started")))
        finished = next(i for i, line in enumerate(lines) if f"] {name}: done in " in line and line.endswith(" s"))
        assert started < finished
    assert "bundle written" in result.stdout


def test_plain_eta_follows_the_recent_speed():
    """A fast first part (a teacher pass) then slow steps: the ETA comes from the last 30 s, not the average."""
    now, clock = fake_clock()
    out = io.StringIO()
    reporter = PlainReporter(out, interval=10, clock=clock)
    with reporter.task("distilling", total=1100) as bar:
        now[0] += 1
        bar.advance(1000)  # 1000 items in 1 s
        for _ in range(60):  # then 1 item a second
            now[0] += 1
            bar.advance(1)
    periodic = [line for line in out.getvalue().splitlines() if "ETA" in line]
    assert periodic[-1] == "[1:00]   distilling: 1059/1100 (96.3%), elapsed 1:00, ETA 0:41"  # the average would say 0:03


def test_a_distilling_build_logs_the_teacher_pass_and_the_steps_as_separate_tasks(deep_tiny, distil_data, tmp_path):
    """One task over texts + steps sat at 95% for most of a real build (the teacher's pass is fast per text,
    the steps slow). The steps are their own task now, counted to the profile's steps."""
    from edgepack.testing import tiny_target_toml

    target = tmp_path / "t.toml"
    target.write_text(tiny_target_toml(formats=("onnx",), buckets=(16,), min_cosine_vs_student=0.9)
                      + '[student]\nstrategy = "distil"\nlayers = 2\nsteps = 12\neval_every = 4\nbatch_size = 8\n')
    result = CliRunner().invoke(main, ["build", "--target", str(target), "--model", str(deep_tiny), "--data", str(distil_data),
                                       "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    teacher = [line for line in lines if "teacher outputs for " in line]
    steps = [line for line in lines if "-layer student on " in line and ", steps: " in line]
    assert teacher and steps and lines.index(teacher[-1]) < lines.index(steps[0])
    n = int(teacher[0].split("teacher outputs for ")[1].split()[0])
    assert f": done {n}/{n} (100.0%)" in teacher[-1]
    assert steps[0].endswith(": started (0/12)") and ": done 12/12 (100.0%)" in steps[-1]
