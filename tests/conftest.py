"""Shared test helpers: the repository root and ways to call Snakemake on the project's workflow."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ helpers (slurm_cluster) importable

# Tests must never reach a model or data hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# The config check caches passed model-fit checks (shortcut_psd.config.fit_cache): one fresh cache per
# test session (Snakemake subprocesses inherit it), so tests neither read nor write the user's own.
_FIT_CACHE = tempfile.mkdtemp(prefix="shortcut-psd-test-cache-")
os.environ["SHORTCUT_PSD_CACHE"] = _FIT_CACHE
atexit.register(shutil.rmtree, _FIT_CACHE, ignore_errors=True)


def snakemake(
    *args: str, timeout: float = 1800, check: bool = False, cwd: Path = REPO
) -> subprocess.CompletedProcess:
    """Run ``python -m snakemake`` on the project's Snakefile; output captured as text (stdout+stderr)."""
    cmd = [sys.executable, "-m", "snakemake", *args]
    return subprocess.run(
        cmd,
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
        check=check,
    )


def load_config(name: str = "config.yaml") -> dict:
    with open(REPO / name) as fh:
        return yaml.safe_load(fh)


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def run_keep_going(workdir: Path, cfg: dict, *targets: str) -> subprocess.CompletedProcess:
    """Write ``cfg`` to ``workdir/study.yaml`` and run the workflow there on it with ``--keep-going`` (the
    ``snakemake`` beside this Python, 2 cores, ``targets`` or all of them), with this checkout's ``src`` on
    PYTHONPATH and no model hub; stdout and stderr captured apart as text, 600 s at most."""
    write_config(workdir / "study.yaml", cfg)
    return subprocess.run(
        [
            SNAKEMAKE,
            "-s",
            str(REPO / "Snakefile"),
            *targets,
            "--cores",
            "2",
            "--keep-going",
            "--configfile",
            "study.yaml",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"},
    )


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
