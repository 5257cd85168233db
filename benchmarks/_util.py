"""Helpers shared by the CPU benchmarks: machine description, load-average gate, median timing."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))


def load1() -> float:
    return os.getloadavg()[0]


def loadavg() -> str:
    a, b, c = os.getloadavg()
    return f"load {a:.2f} {b:.2f} {c:.2f}"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> str:
    import torch

    return (
        f"{cpu_model()}, {os.cpu_count()} cores, python {platform.python_version()}, "
        f"torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M %Z')}"
    )


def wait_quiet(limit: float = 1.2, poll: float = 30.0, max_wait: float = 1200.0) -> bool:
    """Wait until the 1-minute load average is below ``limit`` (at most ``max_wait`` s).

    BENCH_NO_WAIT=1 skips the wait (figures taken then are marked by the printed load average anyway).
    Returns whether the machine was quiet when measuring started.
    """
    if os.environ.get("BENCH_NO_WAIT") == "1":
        return load1() < limit
    t0 = time.monotonic()
    while load1() >= limit:
        if time.monotonic() - t0 > max_wait:
            print(f"# machine still busy after {max_wait:.0f} s ({loadavg()}); measuring anyway", flush=True)
            return False
        print(f"# waiting for a quiet machine ({loadavg()})", flush=True)
        time.sleep(poll)
    return True


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    """Median wall time of ``fn()`` over ``repeats`` calls (the caller warms up first)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def interleaved(
    fns: dict[str, Callable[[], object]], repeats: int, cpu: dict[str, float] | None = None
) -> tuple[dict[str, float], dict[str, float]]:
    """(median, best) wall time of each function, calls interleaved (a, b, a, b, ...) so slow drifts in
    machine load hit every contender alike. The best (minimum) time is the figure least disturbed by other
    processes on a shared machine; the median is the usual one. If ``cpu`` is given, it receives each
    function's median CPU time of this process (all its threads), which time spent waiting for a core
    does not inflate."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    cpus: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
            cpus[k].append(time.process_time() - c0)
    if cpu is not None:
        cpu.update({k: statistics.median(v) for k, v in cpus.items()})
    return {k: statistics.median(v) for k, v in times.items()}, {k: min(v) for k, v in times.items()}
