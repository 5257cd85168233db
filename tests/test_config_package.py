"""The config package: one schema file shipped as package data (the workflow's path links to it), every
name the project imports from ``shortcut_psd.config``, small modules, and a wheel that validates a
config on its own (no source tree)."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from conftest import REPO

import shortcut_psd.config as config_pkg

PKG = REPO / "src" / "shortcut_psd" / "config"

#: every name imported as ``from shortcut_psd.config import X`` (src, workflow, tests, benchmarks, Snakefile)
#: or public in the old config.py
OLD_NAMES = [
    "BINARY_BUILTINS",
    "BUILTIN_DATASETS",
    "CLEAN",
    "REPO_ROOT",
    "SCHEMA_PATH",
    "artifact_seed_for",
    "artifact_seeds",
    "check_model_fits",
    "check_semantics",
    "clean_model_artifacts",
    "config_hash",
    "finetune_conditions",
    "fmt_p",
    "load_schema",
    "load_yaml",
    "own_p0_artifacts",
    "prepare",
    "psd_options",
    "shares_clean_model",
    "shortcut_prevalences",
    "source_datasets",
    "source_pairs",
    "timm_is_model",
    "validate",
]


def test_schema_is_one_real_file_inside_the_package():
    path = config_pkg.SCHEMA_PATH
    assert path == PKG / "config.schema.yaml"
    assert path.is_file() and not path.is_symlink()
    assert config_pkg.load_schema()["$schema"].startswith("http://json-schema.org/draft-07")
    link = REPO / "workflow" / "schemas" / "config.schema.yaml"
    assert link.is_symlink() and not os.path.isabs(os.readlink(link)), (
        "a relative link, so a copy of the tree works"
    )
    assert link.resolve() == path.resolve()
    assert not (REPO / "src" / "shortcut_psd" / "config.schema.yaml").exists(), "one copy only"
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "config.schema.yaml" in data["shortcut_psd.config"]


def test_every_name_of_the_old_module_is_importable():
    missing = [name for name in OLD_NAMES if not hasattr(config_pkg, name)]
    assert not missing, missing
    assert config_pkg.REPO_ROOT == REPO
    assert not (REPO / "src" / "shortcut_psd" / "config.py").exists()


IMPORT = re.compile(r"^[ \t]*from shortcut_psd\.config import (?:\(([^)]*)\)|([^\n]*))", re.M)


def test_used_names_match_the_project_imports():
    """Every name imported from shortcut_psd.config anywhere in the project exists (so no caller changes)."""
    files = [REPO / "Snakefile", *REPO.glob("src/**/*.py"), *REPO.glob("workflow/**/*.py")]
    files += [*REPO.glob("workflow/**/*.smk"), *REPO.glob("tests/*.py"), *REPO.glob("benchmarks/**/*.py")]
    names = set()
    for path in files:
        for group, line in IMPORT.findall(path.read_text()):
            text = re.sub(r"#[^\n]*", "", group or line)
            names |= {n.split(" as ")[0].strip() for n in text.replace("\n", ",").split(",") if n.strip()}
    assert {"prepare", "psd_options", "config_hash", "CLEAN", "shortcut_prevalences"} <= names, names
    assert not [n for n in sorted(names) if not hasattr(config_pkg, n)]


def test_modules_and_functions_stay_small():
    for path in sorted(PKG.glob("*.py")):
        text = path.read_text()
        assert len(text.splitlines()) <= 400, f"{path.name}: split it"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno - node.lineno < 60, f"{path.name}: {node.name} is long"


def test_importing_the_config_package_imports_neither_torch_nor_timm():
    code = "import sys, shortcut_psd.config; print(sorted({'torch', 'timm'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, text=True, capture_output=True, timeout=120
    )
    assert out.stdout.strip() == "[]", out.stdout


VALIDATE = """
import sys
from pathlib import Path
import shortcut_psd
from shortcut_psd.config import SCHEMA_PATH, load_yaml, prepare
target, repo = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
assert Path(shortcut_psd.__file__).resolve().is_relative_to(target), shortcut_psd.__file__
assert SCHEMA_PATH.resolve().is_relative_to(target) and SCHEMA_PATH.is_file(), SCHEMA_PATH
cfg = prepare(load_yaml(repo / "config.yaml"), [repo / "config.yaml"], workdir=repo)
assert cfg["psd"]["window"] == "hann"
try:
    prepare({"psd": {"window": "hamming"}}, workdir=".")
except Exception as exc:
    assert "psd.window" in str(exc), exc
else:
    raise SystemExit("a bad config was accepted")
print("validated with", shortcut_psd.__file__)
"""


def test_a_wheel_validates_a_config_without_the_source_tree(tmp_path):
    """``pip install .`` (not editable) can validate a config: the schema travels inside the wheel.
    About 15 s (build, install, one config check with torch and timm), so not marked slow."""
    tree = tmp_path / "tree"  # a copy: setuptools writes build/ and *.egg-info next to the sources
    shutil.copytree(
        REPO / "src", tree / "src", symlinks=True, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, tree / name)
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip"]
    build = [
        *pip,
        "wheel",
        str(tree),
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-q",
        "-w",
        str(wheels),
    ]
    subprocess.run(build, check=True, timeout=600)
    (wheel,) = wheels.glob("shortcut_psd-*.whl")
    schemas = [n for n in zipfile.ZipFile(wheel).namelist() if n.endswith("config.schema.yaml")]
    assert schemas == ["shortcut_psd/config/config.schema.yaml"], schemas
    install = [*pip, "install", "--no-deps", "--no-index", "-q", "--target", str(target), str(wheel)]
    subprocess.run(install, check=True, timeout=600)
    path = [str(target), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    res = subprocess.run(
        [sys.executable, "-c", VALIDATE, str(target), str(REPO)],
        text=True,
        capture_output=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert res.returncode == 0 and "validated" in res.stdout, res.stdout + res.stderr[-3000:]
    assert str(Path(target)) in res.stdout
