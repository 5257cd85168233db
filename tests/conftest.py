"""Shared test helpers: the repository root and a way to call Snakemake on the project's workflow."""

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


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
