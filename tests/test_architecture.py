"""docs/ARCHITECTURE.md matches the code: every file it names exists, and its list of the files the workflow
writes is the results layout (shortcut_psd.layout) and what a dry run plans; the rules writing the report's
tables and figures write exactly the registered ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO, load_config, snakemake, write_config

from shortcut_psd import layout

DOC = REPO / "docs" / "ARCHITECTURE.md"
SRC = REPO / "src" / "shortcut_psd"
#: names in backticks that are files of the repository (others are modules, functions, commands, ...)
SOURCE_FILE = re.compile(r"^[\w./*-]+(\.(py|md|smk|yaml|yml|rst|toml|cfg|txt)|/)$")


def _named_files(text: str) -> list[str]:
    return [t for t in re.findall(r"`([^`\s]+)`", text) if SOURCE_FILE.match(t) and "{" not in t]


def test_every_file_architecture_names_exists():
    missing = []
    for name in _named_files(DOC.read_text()):
        # the module table names files relative to src/shortcut_psd/
        if not any(list(base.glob(name)) or (base / name).exists() for base in (REPO, SRC)):
            missing.append(name)
    assert not missing, f"docs/ARCHITECTURE.md names files that do not exist: {missing}"


def _documented_patterns() -> list[str]:
    """The patterns of the section "Files the workflow writes": per line, comma-separated files, the first
    with its folder, the others in the same folder unless they name one; an indented line or a
    parenthesis after two spaces is a remark."""
    section = DOC.read_text().split("## Files the workflow writes", 1)[1]
    block = section.split("```", 2)[1]
    out = []
    for line in block.splitlines()[1:]:
        if not line.strip() or line.startswith((" ", "\t")):
            continue
        files = re.split(r"\s{2,}\(", line, maxsplit=1)[0]
        folder = ""
        for item in (f.strip() for f in files.split(",")):
            if "/" in item or not folder:
                folder = item.rsplit("/", 1)[0] + "/" if "/" in item else ""
                out.append(item)
            else:
                out.append(folder + item)
    return out


def test_architecture_lists_exactly_the_results_layout():
    expected = {p for k, p in layout.FILES.items() if k != "figure"}
    expected |= {layout.fill(layout.FILES["figure"], ext=e) for e in layout.FIGURE_FORMATS}
    expected |= {"logs/{stem}.log", "benchmarks/{stem}.tsv"}
    documented = _documented_patterns()
    assert len(documented) == len(set(documented))
    assert set(documented) == expected


def _regex(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\{\w+\})", pattern)
    body = "".join(
        (".+" if p == "{stem}" else "[^/]+") if re.fullmatch(r"\{\w+\}", p) else re.escape(p) for p in parts
    )
    return re.compile(body)


@pytest.fixture(scope="module")
def planned(tmp_path_factory) -> tuple[str, list[dict]]:
    """Every job a dry run of the smoke study (with photon noise: own p = 0 models) plans."""
    tmp = tmp_path_factory.mktemp("arch")
    cfg = load_config("configs/smoke.yaml")
    cfg["artifacts"]["photon_noise"] = {"kind": "photon_noise", "baseline_dose": 2000.0, "dose_fraction": 0.1}
    configfile = write_config(tmp / "smoke_photon.yaml", cfg)
    root = str(tmp / "r")
    res = snakemake("-n", "--nolock", "--configfile", str(configfile), "--config", f"results={root}")
    assert res.returncode == 0, res.stdout[-3000:]
    jobs = []
    for block in re.split(r"\n(?=rule \w+:)", res.stdout)[1:]:
        job = {"rule": re.match(r"rule (\w+):", block).group(1)}
        for key in ("output", "log", "benchmark"):
            m = re.search(rf"^    {key}: (.*)$", block, re.M)
            job[key] = [f.removeprefix(root + "/") for f in m.group(1).split(", ")] if m else []
        jobs.append(job)
    assert not Path(root).exists()
    return root, jobs


def test_every_planned_file_is_documented_and_every_documented_file_planned(planned):
    _, jobs = planned
    patterns = {p: _regex(p) for p in _documented_patterns() if "{stem}" not in p}
    files = [f for j in jobs for f in j["output"]]
    undocumented = [f for f in files if not any(r.fullmatch(f) for r in patterns.values())]
    assert not undocumented, f"planned but not in docs/ARCHITECTURE.md: {undocumented[:10]}"
    unplanned = [p for p, r in patterns.items() if not any(r.fullmatch(f) for f in files)]
    assert not unplanned, f"in docs/ARCHITECTURE.md but no rule writes it: {unplanned}"


def test_logs_and_benchmarks_follow_the_job_stems(planned):
    _, jobs = planned
    assert {j["rule"].removesuffix("_own_p0") for j in jobs} - {"all"} == set(layout.JOBS)
    for j in jobs:
        if j["rule"] == "all":
            continue
        stem = layout.JOBS[j["rule"].removesuffix("_own_p0")]
        assert [bool(_regex(f"logs/{stem}.log").fullmatch(f)) for f in j["log"]] == [True], j
        assert all(_regex(f"benchmarks/{stem}.tsv").fullmatch(f) for f in j["benchmark"]), j
        assert j["benchmark"] or j["rule"] in ("evaluate_clean_model", "provenance"), j


def test_report_rules_write_exactly_the_registered_tables_and_figures(planned):
    _, jobs = planned
    rules = ("aggregate", "figures", "dynamics", "probes_report")
    for rule in rules:
        [job] = [j for j in jobs if j["rule"] == rule]
        assert sorted(job["output"]) == sorted(layout.output_files([rule])), rule
    others = [f for j in jobs if j["rule"] not in rules for f in j["output"]]
    assert not [f for f in others if f.startswith(("tables/", "figures/"))]
