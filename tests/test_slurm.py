"""Snakemake through a real loopback SLURM cluster (tests/slurm_cluster.py) with profiles/slurm.

- a tiny stand-in workflow (two rules, one with ``resources: gpu=1``): outputs exist, the GPU rule was
  submitted with ``--gpus=1`` (checked in slurmctld's record of the job and in the sbatch call), and
  after a config edit only the affected job is resubmitted;
- the project's workflow on a one-seed, two-init, one-artifact cut of configs/smoke.yaml: succeeds, writes ``<results>/tables/*.csv``, and after
  one artifact parameter is changed only the affected jobs are resubmitted.

Every Snakemake run is wrapped in ``timeout`` (a SLURM run whose status checks never see the job end
waits forever and ignores SIGTERM). Needs root + slurm-wlm + munge (.ci/install-slurm.sh), else skips.
"""

from __future__ import annotations

import collections
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from slurm_cluster import SlurmCluster, slurm_cluster  # noqa: F401  (slurm_cluster: pytest fixture)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm"
TINY_TIMEOUT_S = 300
WORKFLOW_TIMEOUT_S = int(os.environ.get("SHORTCUT_PSD_SLURM_TIMEOUT", "1800"))
SUBMITTED_RE = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+)")


# ----------------------------------------------------------------------------------------- helpers


@dataclass
class SmkRun:
    cmd: list[str]
    returncode: int
    output: str  # stdout and stderr interleaved
    seconds: float
    jobs: list[dict[str, str]]  # SLURM jobs submitted during the run (scontrol fields)

    @property
    def submitted(self) -> collections.Counter:
        """Number of SLURM jobs per rule, from each job's Comment ``rule_<rule>[_wildcards_...]``."""
        return collections.Counter(rule_of(j) for j in self.jobs)

    def describe(self, cluster: SlurmCluster, tail: int = 60) -> str:
        lines = self.output.splitlines()[-tail:]
        return (
            f"command: {shlex.join(self.cmd)}\nexit status {self.returncode} after {self.seconds:.0f} s\n"
            f"--- last {len(lines)} lines of Snakemake's output\n" + "\n".join(lines) + "\n"
            f"--- SLURM jobs: {[(j.get('JobId'), j.get('Comment'), j.get('JobState')) for j in self.jobs]}\n"
            + cluster.daemon_logs(20)
        )


def rule_of(job: dict[str, str]) -> str:
    comment = job.get("Comment", "")
    if not comment.startswith("rule_"):
        return f"<not from snakemake: {comment!r}>"
    return comment[len("rule_") :].split("_wildcards_", 1)[0]


def snakemake(
    cluster: SlurmCluster, args: list[str], *, cwd: Path, timeout_s: int, dry_run: bool = False
) -> SmkRun:
    """Run Snakemake with the SLURM executor and profiles/slurm under `timeout`; never raises on rc."""
    cmd = [
        "timeout", "--kill-after=15", str(timeout_s),
        sys.executable, "-m", "snakemake",
        "--executor", "slurm", "--profile", str(PROFILE),
        "--slurm-init-seconds-before-status-checks", "2",
        *(["--dry-run"] if dry_run else []),
        *args,
    ]  # fmt: skip
    # a test session that itself runs inside a SLURM allocation must not leak its job's variables
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    before = cluster.last_job_id()
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run = SmkRun(cmd, p.returncode, p.stdout, time.monotonic() - t0, cluster.jobs(after=before))
    if run.returncode in (124, 137):
        cluster.cancel_all()  # Snakemake was killed; its jobs would keep the node busy
    # Snakemake's own count of submissions must agree with slurmctld's
    if not dry_run:
        assert len(SUBMITTED_RE.findall(run.output)) == len(run.jobs), run.describe(cluster)
    return run


def job_stats(output: str) -> collections.Counter:
    """The per-rule job counts of Snakemake's "Job stats:" table (e.g. of a dry run)."""
    counts: collections.Counter = collections.Counter()
    m = re.search(r"Job stats:\n(.*?)\n\s*total\s+\d+", output, re.S)
    if m:
        for line in m.group(1).splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                counts[parts[0]] = int(parts[1])
    return counts


def check_rerun_after_edit(
    cluster: SlurmCluster,
    first: SmkRun,
    args_edited: list[str],
    *,
    cwd: Path,
    timeout_s: int,
) -> SmkRun:
    """After a config edit, rerun and check that only the affected jobs were submitted.

    The affected jobs are what a dry run with the edited config plans (Snakemake tracks `params:`).
    A dry run does not say which rules run locally (no shell/script, `localrules`), so the rerun is
    compared per rule, over the rules that went to SLURM in either run: it must submit exactly the
    planned number of jobs of each, nothing unplanned, at least one job and fewer than `first` did.
    """
    plan = snakemake(cluster, args_edited, cwd=cwd, timeout_s=timeout_s, dry_run=True)
    assert plan.returncode == 0, plan.describe(cluster)
    planned = job_stats(plan.output)
    assert planned, "no 'Job stats:' table in the dry run's output\n" + plan.describe(cluster)

    rerun = snakemake(cluster, args_edited, cwd=cwd, timeout_s=timeout_s)
    assert rerun.returncode == 0, rerun.describe(cluster)
    assert rerun.submitted, "the config edit changed nothing: no job was resubmitted\n" + rerun.describe(
        cluster
    )
    rules = set(first.submitted) | set(rerun.submitted)
    expected = collections.Counter({r: planned[r] for r in rules if planned[r]})
    assert rerun.submitted == expected, (
        f"resubmitted {dict(rerun.submitted)}, expected {dict(expected)} (dry run planned "
        f"{dict(planned)}; first run submitted {dict(first.submitted)})\n" + rerun.describe(cluster)
    )
    assert rerun.submitted.total() < first.submitted.total(), (
        f"a one-parameter edit resubmitted every job: {dict(rerun.submitted)}\n" + rerun.describe(cluster)
    )
    return rerun


# ----------------------------------------------------------------------------------------- tiny workflow

TINY_SNAKEFILE = """\
configfile: "config.yaml"


R = config["results"]


rule all:
    input:
        f"{R}/tables/cpu.csv",
        f"{R}/tables/gpu.csv",


rule cpu_job:
    output:
        f"{R}/tables/cpu.csv",
    params:
        amplitude=config["artifacts"]["band_noise"]["amplitude"],
    shell:
        "echo amplitude,{params.amplitude} > {output}"


rule gpu_job:
    output:
        f"{R}/tables/gpu.csv",
    params:
        size=config["artifacts"]["tag"]["size"],
    resources:
        gpu=1,
    shell:
        "{{ echo size,{params.size}; env | grep -E '^(CUDA_VISIBLE_DEVICES|SLURM_JOB_GPUS)=' | tr = , || true; }}"
        " > {output}"
"""

TINY_CONFIG = {"results": "results", "artifacts": {"band_noise": {"amplitude": 0.1}, "tag": {"size": 8}}}


@pytest.fixture(scope="module")
def tiny(slurm_cluster, tmp_path_factory):  # noqa: F811
    """The tiny workflow, run once through SLURM (verbose, to see the sbatch calls)."""
    wd = tmp_path_factory.mktemp("tiny-workflow")
    (wd / "Snakefile").write_text(TINY_SNAKEFILE)
    (wd / "config.yaml").write_text(yaml.safe_dump(TINY_CONFIG))
    results = wd / "out"
    args = ["--config", f"results={results}", "--verbose"]
    run = snakemake(slurm_cluster, args, cwd=wd, timeout_s=TINY_TIMEOUT_S)
    return wd, results, args, run


def test_tiny_workflow_runs_on_slurm_and_requests_the_gpu(slurm_cluster, tiny):  # noqa: F811
    wd, results, _, run = tiny
    assert run.returncode == 0, run.describe(slurm_cluster)
    assert (results / "tables" / "cpu.csv").read_text() == "amplitude,0.1\n"
    assert run.submitted == {"cpu_job": 1, "gpu_job": 1}, run.describe(slurm_cluster)

    # 1. what slurmctld recorded: the GPU rule's job asks for one GPU, the other for none
    by_rule = {rule_of(j): j for j in run.jobs}
    assert by_rule["gpu_job"].get("TresPerJob") == "gres:gpu:1", by_rule["gpu_job"]
    assert "gpu" not in by_rule["cpu_job"].get("TresPerJob", ""), by_rule["cpu_job"]
    assert all(j["JobState"] == "COMPLETED" for j in run.jobs), run.describe(slurm_cluster)

    # 2. what the executor sent: `--gpus=1` in the GPU rule's sbatch call only (--verbose shows them)
    calls = [line for line in run.output.splitlines() if "sbatch call:" in line]
    gpu_calls = [c for c in calls if "--comment rule_gpu_job" in c]
    cpu_calls = [c for c in calls if "--comment rule_cpu_job" in c]
    assert len(gpu_calls) == 1 and len(cpu_calls) == 1, calls
    assert re.search(r"\s--gpus=1(\s|$)", gpu_calls[0]), gpu_calls[0]
    assert "--gpus" not in cpu_calls[0] and "--gres" not in cpu_calls[0], cpu_calls[0]

    # 3. what the job saw: SLURM exported the (stand-in) GPU to the job step
    gpu_env = dict(line.split(",", 1) for line in (results / "tables" / "gpu.csv").read_text().splitlines())
    assert gpu_env.get("size") == "8"
    assert gpu_env.get("CUDA_VISIBLE_DEVICES") in {str(i) for i in range(slurm_cluster.gpus)}, gpu_env


def test_tiny_workflow_resubmits_only_the_edited_rule(slurm_cluster, tiny):  # noqa: F811
    wd, _, args, first = tiny
    assert first.returncode == 0, first.describe(slurm_cluster)
    edited = dict(TINY_CONFIG, artifacts={**TINY_CONFIG["artifacts"], "tag": {"size": 12}})
    (wd / "edited.yaml").write_text(yaml.safe_dump(edited))
    rerun = check_rerun_after_edit(
        slurm_cluster, first, ["--configfile", "edited.yaml", *args], cwd=wd, timeout_s=TINY_TIMEOUT_S
    )
    assert rerun.submitted == {"gpu_job": 1}


# ----------------------------------------------------------------------------------------- the project


def perturb_one_artifact_parameter(cfg: dict) -> tuple[str, str, object, object]:
    """Change one numeric parameter of one artifact in a config dict, in place.

    Looks under the top-level `artifacts` key (a mapping name -> parameters, or a list of mappings with
    a name) for the first float parameter (else int), scales it by 0.8 (ints: +1).
    Returns (artifact name, parameter, old value, new value).
    """
    arts = cfg.get("artifacts")
    if isinstance(arts, dict):
        items = list(arts.items())
    elif isinstance(arts, list):
        items = [(a.get("name") or a.get("kind") or str(i), a) for i, a in enumerate(arts)]
    else:
        raise AssertionError(f"configs/smoke.yaml has no `artifacts` mapping or list: {arts!r}")

    def numeric(params: dict, kind: type):
        for key, value in params.items():
            if isinstance(value, kind) and not isinstance(value, bool):
                yield key, value
            elif isinstance(value, dict):
                for sub_key, sub_value in numeric(value, kind):
                    yield f"{key}.{sub_key}", sub_value

    for kind in (float, int):
        for name, params in items:
            if not isinstance(params, dict):
                continue
            for dotted, old in numeric(params, kind):
                new = round(old * 0.8, 6) if kind is float and old else old + 1
                holder = params
                *parents, leaf = dotted.split(".")
                for p in parents:
                    holder = holder[p]
                holder[leaf] = new
                return name, dotted, old, new
    raise AssertionError(f"no numeric artifact parameter found in {arts!r}")


def test_project_workflow_on_slurm_reruns_only_affected_jobs(request, tmp_path):
    snakefile, smoke = REPO / "Snakefile", REPO / "configs" / "smoke.yaml"
    if not (snakefile.is_file() and smoke.is_file()):
        pytest.skip("workflow not yet present")
    cluster: SlurmCluster = request.getfixturevalue("slurm_cluster")

    results = tmp_path / "results"
    common = [
        "--config", f"results={results}",
        "--slurm-logdir", str(tmp_path / "slurm_logs"),
    ]  # fmt: skip
    # A smaller DAG than the smoke study (about 20 jobs instead of about 60): this test checks submission,
    # resources, the GPU flag and precise reruns through SLURM, not the science, which the local
    # end-to-end tests check on the whole smoke study. One seed, two inits (one pre-trained), one artifact.
    cfg = yaml.safe_load(smoke.read_text())
    cfg["seeds"] = [0]
    cfg["inits"] = {k: v for k, v in cfg["inits"].items() if k in ("scratch", "photos")}
    cfg["artifacts"] = {"band_high": cfg["artifacts"]["band_high"]}
    small = tmp_path / "slurm-small.yaml"
    small.write_text(yaml.safe_dump(cfg, sort_keys=False))
    first = snakemake(cluster, ["--configfile", str(small), *common], cwd=REPO, timeout_s=WORKFLOW_TIMEOUT_S)
    assert first.returncode == 0, first.describe(cluster)
    tables = sorted((results / "tables").glob("*.csv"))
    assert tables, f"no {results}/tables/*.csv\n" + first.describe(cluster)
    assert all(j["JobState"] == "COMPLETED" for j in first.jobs), first.describe(cluster)
    # jobs on cluster nodes start the ordinary way: no preloader (shortcut_psd.preload) is started
    assert not (results / "logs" / "preload.log").exists()
    logs = "".join(p.read_text() for p in (results / "logs").rglob("*.log"))
    assert "preloaded=1" not in logs and "preloaded=0" in logs

    name, param, old, new = perturb_one_artifact_parameter(cfg)
    edited = tmp_path / "smoke-edited.yaml"
    edited.write_text(yaml.safe_dump(cfg, sort_keys=False))
    print(f"edited artifacts.{name}.{param}: {old} -> {new}")
    rerun = check_rerun_after_edit(
        cluster,
        first,
        ["--configfile", str(edited), *common],
        cwd=REPO,
        timeout_s=WORKFLOW_TIMEOUT_S,
    )
    print(
        f"first run: {first.submitted.total()} SLURM jobs in {first.seconds:.0f} s; after the edit: "
        f"{dict(rerun.submitted)} in {rerun.seconds:.0f} s"
    )
