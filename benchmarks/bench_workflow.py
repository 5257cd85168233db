"""Wall time of the workflow: the default study from scratch, a no-op rerun, and planning the paper config.

1. ``snakemake --cores 2 --config results=<fresh tmp dir>`` (the default study, config.yaml) from nothing;
2. the same command again, which must find nothing to do;
   followed by the fixed cost per job by rule (``bench_startup.py``) read from that run's logs;
3. ``snakemake -n`` of ``configs/paper.yaml`` (about 3,000 jobs) on the fake data tree that
   ``tests/test_paper_config.py`` builds (its fixture is reused).

Step 1 takes several minutes on 2 cores: ``--skip-scratch`` times only steps 2-3 against an existing
results folder given by ``--results`` (for example one left by an earlier run with ``--keep``);
``--update-first`` then first brings that folder up to date (config or code changed since) and times that.

    .venv/bin/python benchmarks/bench_workflow.py --keep      # all three (minutes)
    .venv/bin/python benchmarks/bench_workflow.py --plan-only # step 3 only
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _util
import bench_startup

REPO = _util.REPO


def snakemake(*args: str, cwd: Path = REPO, log: Path | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    seconds = time.perf_counter() - t0
    if log:
        log.write_text(res.stdout)
    if res.returncode != 0:
        sys.exit(f"snakemake {' '.join(args)} failed ({res.returncode}):\n{res.stdout[-4000:]}")
    return seconds, res.stdout


def fake_paper_tree(base: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    import test_paper_config

    build = test_paper_config.fake_paper_tree
    build = getattr(build, "__wrapped__", build)  # the pytest fixture's plain function
    return build(base)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", help="results folder (default: a fresh temporary one)")
    ap.add_argument("--skip-scratch", action="store_true", help="do not run the study; time the rest")
    ap.add_argument("--plan-only", action="store_true", help="only plan the paper config")
    ap.add_argument("--keep", action="store_true", help="keep the temporary results folder")
    ap.add_argument(
        "--update-first",
        action="store_true",
        help="with --skip-scratch: bring --results up to date first (timed)",
    )
    ap.add_argument("--cores", default="2")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra --config entries for the study's runs (e.g. preload=False)",
    )
    ap.add_argument("--json")
    args = ap.parse_args()
    print(f"# {_util.machine()}")
    tmp = Path(tempfile.mkdtemp(prefix="bench_workflow."))
    results = Path(args.results) if args.results else tmp / "results"
    out: dict = {"machine": _util.machine(), "results": str(results), "set": args.set}
    try:
        if not args.plan_only:
            _util.wait_quiet()
            if not args.skip_scratch:
                load = _util.loadavg()
                s, log = snakemake(
                    "--cores",
                    args.cores,
                    "--config",
                    f"results={results}",
                    *args.set,
                    log=tmp / "scratch.log",
                )
                jobs = re.findall(r"(\d+) of (\d+) steps \(100%\) done", log)
                out["scratch_s"] = s
                print(
                    f"default study from scratch (--cores {args.cores}): {s:7.1f} s, "
                    f"{jobs[-1][1] if jobs else '?'} jobs | before: {load} | after: {_util.loadavg()}",
                    flush=True,
                )
                fixed = bench_startup.summarise(bench_startup.job_times(results))
                out["startup"] = fixed
                print("fixed cost per job, by rule (benchmarks/bench_startup.py):", flush=True)
                print(bench_startup.table(fixed), flush=True)
            if args.skip_scratch and args.update_first:
                s, log = snakemake(
                    "--cores", args.cores, "--config", f"results={results}", *args.set, log=tmp / "update.log"
                )
                jobs = re.findall(r"(\d+) of (\d+) steps \(100%\) done", log)
                print(
                    f"update run: {s:7.1f} s, {jobs[-1][1] if jobs else 0} jobs | {_util.loadavg()}",
                    flush=True,
                )
            s, log = snakemake("--cores", args.cores, "--config", f"results={results}", *args.set)
            noop = "Nothing to be done" in log
            out["noop_s"] = s
            print(f"no-op rerun: {s:7.1f} s ({'nothing to do' if noop else 'JOBS RAN'}) | {_util.loadavg()}")
        else:
            _util.wait_quiet()
        tree = fake_paper_tree(tmp / "paper")
        s, log = snakemake(
            "-n", "--nolock", "--quiet", "rules", "--snakefile", str(REPO / "Snakefile"),
            "--directory", str(tree), "--configfile", str(REPO / "configs" / "paper.yaml"),
        )  # fmt: skip
        total = re.search(r"^total\s+(\d+)$", log, re.M)
        out["plan_paper_s"] = s
        print(
            f"plan configs/paper.yaml (-n): {s:7.1f} s, {total.group(1) if total else '?'} jobs | {_util.loadavg()}"
        )
    finally:
        if args.keep:
            print(f"# kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
