"""SIGTERM a real build a few ms into a stage, many times; count the clean exits (143 + the one line).

    python bench/exploration/signal_stress.py WORK_DIR RUNS [STAGE] [MAX_DELAY_S]

Each run is the real-process harness of tests/test_reliability_signals.py (the CLI with STAGE held open
after its work) on the tiny seeded model, with a warm cache in WORK_DIR, signalled a uniform random
0..MAX_DELAY_S (default 0.06) after STAGE (default quantise) starts. A run that does not exit 143 with
"interrupted by SIGTERM" leaves WORK_DIR/bad-N.txt with its stderr (faulthandler's stack included).
How the crash of a signal inside onnx's import was found and its fix checked (docs/reliability.md 39a)."""

import random
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

import edgepack  # noqa: E402
from edgepack.testing import TINY_SENTENCES, tiny_bert, tiny_target_toml  # noqa: E402
from test_reliability_signals import build_args, start_held_build  # noqa: E402


def main(work: Path, runs: int, stage: str = "quantise", max_delay: float = 0.06) -> None:
    work.mkdir(parents=True, exist_ok=True)
    model, data, target = work / "model", work / "tiny.txt", work / "tiny.toml"
    if not model.exists():
        tiny_bert(model)
    data.write_text("\n".join(TINY_SENTENCES) + "\n")
    target.write_text(tiny_target_toml())
    cache, out, marker = work / "cache", work / "out", work / "started"
    if not out.exists():
        edgepack.build(target=str(target), model=str(model), data=(str(data),), out=out, cache_dir=cache)
    rng, clean = random.Random(), 0
    for i in range(runs):
        marker.unlink(missing_ok=True)
        proc = start_held_build(build_args(model, target, data, out, cache), stage, marker)
        # Polled every 2 ms, not with the tests' wait_for (50 ms): the crash window was 15-33 ms wide.
        while not marker.exists() and proc.poll() is None:
            time.sleep(0.002)
        delay = rng.uniform(0, max_delay)
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=300)
        ok = proc.returncode == 143 and "interrupted by SIGTERM" in err
        clean += ok
        print(f"{i} delay {delay:.4f} s exit {proc.returncode} {'clean' if ok else 'CRASH'}", flush=True)
        if not ok:
            (work / f"bad-{i}.txt").write_text(f"exit {proc.returncode} delay {delay:.4f}\n{err}")
    print(f"{clean} of {runs} clean")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), *(sys.argv[3:4]), *map(float, sys.argv[4:5]))
