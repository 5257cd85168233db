"""benchmarks/bench_startup.py reads the fixed cost per job from the jobs' logs and benchmark files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_startup  # noqa: E402


def _job(results: Path, rel: str, rule: str, wall: float, timing: str | None) -> None:
    log = results / "logs" / f"{rel}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    text = f"10:00:00 x INFO: start: rule {rule}, wildcards {{}}, threads 1\n"
    log.write_text(text + (f"10:00:09 x INFO: {timing}\n" if timing else ""))
    bench = results / "benchmarks" / f"{rel}.tsv"
    bench.parent.mkdir(parents=True, exist_ok=True)
    bench.write_text(f"s\th:m:s\tmax_rss\n{wall}\t0:00:{wall:02.0f}\t100\n")


def test_fixed_cost_is_wall_minus_work(tmp_path):
    _job(tmp_path, "finetune/a/seed0", "finetune", 20.0, "timing: setup_s=4.50 work_s=15.00")
    _job(
        tmp_path,
        "finetune/b/seed0",
        "finetune",
        10.0,
        "timing: setup_s=4.00 work_s=5.00 cpu_s=4.10 max_rss_mb=690 preloaded=1",
    )
    _job(tmp_path, "aggregate", "aggregate", 3.0, None)  # written before the marks existed
    (tmp_path / "logs" / "snakemake.log").write_text("not a job log\n")
    s = bench_startup.summarise(bench_startup.job_times(tmp_path))
    ft = s["rules"]["finetune"]
    assert (
        ft["jobs"] == 2
        and ft["preloaded"] == 1
        and ft["fixed_s"] == pytest.approx(10.0)
        and ft["setup_s"] == pytest.approx(8.5)
    )
    assert ft["share"] == pytest.approx(10.0 / 30.0)
    assert s["rules"]["aggregate"]["unmarked"] == 1
    assert s["total"]["share"] == pytest.approx(10.0 / 30.0)  # unmarked jobs are not in the share
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_startup.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "| finetune | 2 | 1 | 30.0 | 10.0 | 8.5 | 33.3 % |" in out


def test_script_marks_reach_the_log(tmp_path):
    """_common.start + ready + finish write the timing line (set-up time from the process start), flush the
    log and end the process with status 0; a job that fails before finish exits 1 with its error logged."""
    script = tmp_path / "job.py"
    script.write_text(
        "import sys, types\n"
        f"sys.path.insert(0, {str(REPO / 'workflow' / 'scripts')!r})\n"
        "import _common\n"
        "sm = types.SimpleNamespace(log=[sys.argv[1]], threads=1, rule='figures', wildcards={}, output=[])\n"
        "log = _common.start(sm, 'job')\n"
        "_common.ready()\n"
        "log.info('last line of work')\n"
        "if len(sys.argv) > 2:\n"
        "    raise ValueError('the job failed')\n"
        "_common.finish(log)\n"
        "print('not reached')\n"
    )
    log = tmp_path / "job.log"
    res = subprocess.run([sys.executable, str(script), str(log)], capture_output=True, text=True)
    assert res.returncode == 0 and "not reached" not in res.stdout
    text = log.read_text()
    m = bench_startup.TIMING.search(text)
    assert "last line of work" in text and m and 0 < float(m["setup"]) < 60 and 0 <= float(m["work"]) < 60
    res = subprocess.run([sys.executable, str(script), str(log), "fail"], capture_output=True, text=True)
    assert res.returncode == 1
    text = log.read_text()
    assert "ValueError: the job failed" in text and not bench_startup.TIMING.search(text)
