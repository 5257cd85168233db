"""Fixed cost per job of a finished study, per rule, from the jobs' own logs and benchmark files.

Every workflow script logs at exit ``timing: setup_s=<process start to the end of its imports>
work_s=<from there to exit> cpu_s=... max_rss_mb=... preloaded=<0|1>`` (``workflow/scripts/_common.py``;
``preloaded=1``: the job ran in a fork of the preloader, ``shortcut_psd.preload``, and its set-up still
counts from the start of the job's own process); Snakemake's benchmark file of the same job
(``<results>/benchmarks/<same path>.tsv``, column ``s``) gives the job's whole wall time, from the moment
Snakemake starts it to its end. So per job:

- fixed cost = benchmark ``s`` - ``work_s``: interpreter start, Snakemake's script preamble, imports, and
  the exit after the last computation (interpreter and thread-pool tear-down);
- ``setup_s`` is the part before the work; ``exit`` = ``s - setup_s - work_s`` the part after it.

A job without a benchmark file (``provenance``, ``evaluate_clean_model``) is left out of the shares; a job
without a timing line (a results folder written before the marks existed) is counted as "unmarked".

    .venv/bin/python benchmarks/bench_startup.py results            # the default study's results folder
    .venv/bin/python benchmarks/bench_startup.py results --json out.json

``bench_workflow.py`` prints this table after it runs the default study from scratch.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

TIMING = re.compile(
    r"timing: setup_s=(?P<setup>[0-9.]+|nan) work_s=(?P<work>[0-9.]+)"
    r"(?: cpu_s=[0-9.]+ max_rss_mb=[0-9.]+ preloaded=(?P<preloaded>[01]))?"
)
RULE = re.compile(r"start: rule (?P<rule>\S+),")


def job_times(results: str | Path) -> list[dict]:
    """One record per job log under ``<results>/logs``: rule, wall (benchmark), setup, work, exit."""
    results = Path(results)
    rows = []
    for log in sorted((results / "logs").rglob("*.log")):
        text = log.read_text(errors="replace")
        rule = RULE.search(text)
        if rule is None:
            continue  # not a job log of a workflow script (e.g. Snakemake's own)
        bench = results / "benchmarks" / log.relative_to(results / "logs").with_suffix(".tsv")
        wall = None
        if bench.exists():
            lines = bench.read_text().splitlines()
            if len(lines) >= 2:
                wall = float(lines[1].split("\t")[0])
        timing = TIMING.search(text)
        setup = float(timing["setup"]) if timing else None
        work = float(timing["work"]) if timing else None
        preloaded = bool(timing and timing["preloaded"] == "1")
        rows.append(
            {"rule": rule["rule"], "log": str(log), "wall_s": wall, "setup_s": setup, "work_s": work,
             "preloaded": preloaded}
        )  # fmt: skip
    return rows


def summarise(rows: list[dict]) -> dict:
    """Per rule and in total: jobs, summed wall, summed fixed cost (wall - work) and its share of the
    summed wall of the jobs that logged their timing."""
    keys = ("jobs", "wall_s", "marked_wall_s", "fixed_s", "setup_s", "unmarked", "preloaded")
    per = defaultdict(lambda: dict.fromkeys(keys, 0))
    for r in rows:
        if r["wall_s"] is None:
            continue
        p = per[r["rule"]]
        p["jobs"] += 1
        p["wall_s"] += r["wall_s"]
        p["preloaded"] += bool(r.get("preloaded"))
        if r["work_s"] is None:
            p["unmarked"] += 1
            continue
        p["marked_wall_s"] += r["wall_s"]
        p["fixed_s"] += max(r["wall_s"] - r["work_s"], 0.0)
        if r["setup_s"] is not None and r["setup_s"] == r["setup_s"]:  # not NaN
            p["setup_s"] += r["setup_s"]
    total = {k: sum(p[k] for p in per.values()) for k in keys}
    for p in [*per.values(), total]:  # the share among the jobs that logged their timing
        p["share"] = p["fixed_s"] / p["marked_wall_s"] if p["marked_wall_s"] else float("nan")
    return {"rules": dict(sorted(per.items(), key=lambda kv: -kv[1]["wall_s"])), "total": total}


def table(summary: dict) -> str:
    lines = [
        "| rule | jobs | preloaded | summed wall s | fixed s (wall - work) | of which set-up s | fixed share |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows = [*summary["rules"].items(), ("**all**", summary["total"])]
    for rule, p in rows:
        unmarked = f" ({p['unmarked']} unmarked)" if p["unmarked"] else ""
        lines.append(
            f"| {rule} | {p['jobs']}{unmarked} | {p['preloaded']} | {p['wall_s']:.1f} | {p['fixed_s']:.1f} | {p['setup_s']:.1f} "
            f"| {100 * p['share']:.1f} % |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", help="a finished study's results folder")
    ap.add_argument("--json", help="also write the summary here")
    args = ap.parse_args(argv)
    rows = job_times(args.results)
    if not rows:
        sys.exit(f"no job logs under {args.results}/logs: run the study first")
    summary = summarise(rows)
    print(table(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
