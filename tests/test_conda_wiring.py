"""Per-rule conda environments: pinned, parseable, and wired to existing files.

No conda can be installed on the CI machines (not in Debian, not on PyPI, conda-forge unreachable), so
this is a *wiring* test, not an environment test: a stand-in ``conda`` on PATH answers only the three
queries Snakemake makes before planning (``conda info --json``, ``conda --version``,
``conda config --get channel_priority --json``), which is enough for ``snakemake -n --use-conda`` to
resolve every rule's ``conda:`` path. Plain ``-n`` and ``--lint`` do not notice a wrong path; this does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path

import pytest
import yaml
from conftest import REPO

ENVS = sorted((REPO / "envs").glob("*.yaml"))
PIN = re.compile(r"^[A-Za-z0-9_.-]+(==|=)[0-9][A-Za-z0-9_.*+-]*$")


@pytest.mark.parametrize("env", ENVS, ids=[e.name for e in ENVS])
def test_env_parses_and_pins_every_package(env):
    spec = yaml.safe_load(env.read_text())
    assert spec["channels"][0] == "conda-forge"
    deps = spec["dependencies"]
    names = []
    for d in deps:
        if isinstance(d, dict):  # pip section
            for p in d["pip"]:
                assert "==" in p, f"{env.name}: pip package {p} not pinned"
            continue
        assert PIN.match(d), f"{env.name}: {d} is not pinned to a version"
        names.append(d.split("=")[0])
    assert "python" in names
    assert "torch" not in names, "conda-forge calls it pytorch"
    assert "shortcut-psd" not in names and "shortcut_psd" not in names  # the library comes from src/


def test_every_rule_names_an_existing_env():
    used = set()
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        for m in re.finditer(r'conda:\s*\n\s*"([^"]+)"', smk.read_text()):
            path = (smk.parent / m.group(1)).resolve()
            assert path.is_file(), f"{smk.name}: conda env {m.group(1)} does not exist"
            used.add(path)
    assert used == {e.resolve() for e in ENVS}, "an env file is unused or a rule lacks conda:"


def _stand_in_conda(bindir: Path, root: Path) -> None:
    script = bindir / "conda"
    info = json.dumps(
        {
            "conda_prefix": str(root),
            "platform": "linux-64",
            "conda_version": "24.11.0",
            "envs_dirs": [str(root / "envs")],
            "root_prefix": str(root),
        }
    )
    script.write_text(
        "#!/bin/sh\n"
        "# test stand-in: answers only what snakemake asks before planning\n"
        f'case "$*" in\n'
        f"  'info --json') echo '{info}' ;;\n"
        "  '--version') echo 'conda 24.11.0' ;;\n"
        '  \'config --get channel_priority --json\') echo \'{"get": {"channel_priority": "strict"}}\' ;;\n'
        '  *) echo "stand-in conda cannot: $*" >&2; exit 1 ;;\n'
        "esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def _dry_run_use_conda(tmp_path: Path, snakefile_dir: Path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _stand_in_conda(bindir, tmp_path / "conda-root")
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
    import subprocess
    import sys

    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--nolock",
            "--use-conda",
            "--snakefile",
            str(snakefile_dir / "Snakefile"),
            "--directory",
            str(snakefile_dir),
            "--configfile",
            str(REPO / "configs" / "smoke.yaml"),
            "--config",
            f"results={tmp_path}/r",
        ],
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        timeout=600,
    )


def test_use_conda_dry_run_resolves_every_env(tmp_path):
    res = _dry_run_use_conda(tmp_path, REPO)
    assert res.returncode == 0, res.stdout[-3000:]
    assert "conda" in res.stdout.lower()


def test_use_conda_dry_run_fails_on_a_wrong_env_path(tmp_path):
    """A copy of the workflow with one rule's conda: path broken must be refused."""
    copy = tmp_path / "wf"
    shutil.copytree(
        REPO, copy, ignore=shutil.ignore_patterns(".venv", ".git", "results*", ".snakemake", "tests")
    )
    smk = copy / "workflow" / "rules" / "pretrain.smk"
    smk.write_text(smk.read_text().replace("../../envs/torch.yaml", "../../envs/torch-typo.yaml"))
    res = _dry_run_use_conda(tmp_path, copy)
    assert res.returncode != 0
    assert "torch-typo.yaml" in res.stdout, res.stdout[-3000:]
