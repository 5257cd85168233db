"""The conda environments install exactly the tested versions, hold what their rules import, and a wheel
of the project works on its own.

- ``pyproject.toml`` is the one source of truth for versions. Each ``envs/*.yaml`` takes only ``python``
  and ``pip`` from conda-forge and installs every other package through its ``pip:`` section, pinned to
  the version ``pyproject.toml`` pins (the same wheels the test suite runs).
- Each rule's script, and what it imports from the library at module level (followed through
  ``shortcut_psd``), needs only third-party packages its rule's environment lists.
- ``pip install`` of a wheel built here (not editable) gives a working ``shortcut-psd`` command and config
  validation: the schema travels as package data.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import REPO

ENVS = sorted((REPO / "envs").glob("*.yaml"))
SCRIPTS = REPO / "workflow" / "scripts"
SRC = REPO / "src"
#: conda-forge names -> PyPI names (only python and pip are allowed from conda; kept for clearer messages)
CONDA_TO_PYPI = {"pytorch": "torch", "matplotlib-base": "matplotlib", "seaborn-base": "seaborn"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_pins() -> dict[str, str]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    deps = list(data["project"]["dependencies"])
    for extra in data["project"].get("optional-dependencies", {}).values():
        deps += extra
    pins = {}
    for d in deps:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^;\s]+)", d.strip())
        assert m, f"pyproject.toml: {d} is not pinned with =="
        pins[_norm(m.group(1))] = m.group(3)
    return pins


def env_packages(env: Path) -> tuple[dict[str, str], dict[str, str]]:
    """``(conda {name: version}, pip {name: version})`` of an environment file."""
    conda, pip = {}, {}
    for d in yaml.safe_load(env.read_text())["dependencies"]:
        if isinstance(d, dict):
            for p in d["pip"]:
                m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?==(\S+)", p.strip())
                assert m, f"{env.name}: pip package {p} not pinned with =="
                pip[_norm(m.group(1))] = m.group(3)
        else:
            name, _, version = d.partition("=")
            conda[_norm(name)] = version.lstrip("=")
    return conda, pip


def version_problems(env: Path) -> list[str]:
    """Why an environment file would not install exactly the tested versions (empty: it does)."""
    pins = pyproject_pins()
    conda, pip = env_packages(env)
    problems = []
    extra = sorted(set(conda) - {"python", "pip"})
    if extra:
        problems.append(
            f"{env.name}: {extra} come from conda-forge at versions the tests never ran; install them in the "
            "pip: section at the versions of pyproject.toml"
        )
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    if not (conda.get("python") == "3.11" and ">=3.11" in requires and "<3.12" in requires):
        problems.append(f"{env.name}: python={conda.get('python')} but pyproject.toml requires {requires}")
    if not pip:
        problems.append(f"{env.name}: no pip: section")
    for name, version in pip.items():
        if name not in pins:
            problems.append(f"{env.name}: {name} is not a dependency in pyproject.toml (add it there first)")
        elif version != pins[name]:
            problems.append(
                f"{env.name}: {name}=={version} but pyproject.toml (what the tests run) pins {pins[name]}"
            )
    return problems


@pytest.mark.parametrize("env", ENVS, ids=[e.name for e in ENVS])
def test_env_installs_exactly_the_tested_versions(env):
    assert not version_problems(env)


def test_a_disagreeing_env_is_caught(tmp_path):
    """The check itself: the old torch environment (conda-forge pytorch 2.9.1) and a stale pip pin fail."""
    old = tmp_path / "old.yaml"
    old.write_text("channels: [conda-forge]\ndependencies: [python=3.11, pytorch=2.9.1, pandas=2.3.3]\n")
    assert any("pytorch" in p for p in version_problems(old))
    stale = tmp_path / "stale.yaml"
    stale.write_text(
        "channels: [conda-forge]\ndependencies: [python=3.11, pip=25.3, {pip: [torch==2.9.1]}]\n"
    )
    (problem,) = version_problems(stale)
    assert "torch==2.9.1" in problem and pyproject_pins()["torch"] in problem


# -- what each rule imports --------------------------------------------------------------------------------
def _library_file(module: str) -> Path | None:
    base = SRC.joinpath(*module.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _import_nodes(nodes) -> list[tuple[str, set[str] | None, str | None]]:
    """``(module, names taken from it or None, alias)`` for the import statements among ``nodes``."""
    out = []
    for node in nodes:
        if isinstance(node, ast.Import):
            out += [(a.name, None, a.asname) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                if _library_file(sub) is not None:  # from package import module
                    out.append((sub, None, a.asname or a.name))
                else:
                    out.append((node.module, {a.name}, None))
    return out


def _walk_imports(nodes) -> list[ast.AST]:
    return [n for top in nodes for n in ast.walk(top) if isinstance(n, (ast.Import, ast.ImportFrom))]


def _used_functions(tree: ast.Module, names: set[str]) -> list[ast.AST]:
    """The top-level functions/classes named in ``names``, and those they name in turn (within the module)."""
    defs = {
        n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }
    for n in tree.body:  # a module-level table of functions (BUILTINS = {"photos": build_photos, ...})
        targets = (
            n.targets if isinstance(n, ast.Assign) else [n.target] if isinstance(n, ast.AnnAssign) else []
        )
        for t in targets:
            if isinstance(t, ast.Name) and t.id not in defs and n.value is not None:
                defs[t.id] = n
    todo, done = [n for n in names if n in defs], set()
    while todo:
        name = todo.pop()
        if name in done:
            continue
        done.add(name)
        for n in ast.walk(defs[name]):
            if isinstance(n, ast.Name) and n.id in defs and n.id not in done:
                todo.append(n.id)
    return [defs[n] for n in sorted(done)]


def third_party_imports(script: Path) -> set[str]:
    """Top-level third-party modules a rule's script needs, followed through the library: every import
    in the script; for each library module, its module-level imports and the imports inside the functions
    the caller uses (``from m import f``, or ``m.f`` through an alias), recursively. ``_common``'s torch
    import is only for the rules that train, so only its module-level imports count."""
    found: set[str] = set()
    seen: set[tuple[Path, frozenset]] = set()
    todo: list[tuple[Path, set[str] | None]] = [(script, None)]  # None: every import in the file
    while todo:
        path, names = todo.pop()
        key = (path, frozenset(names) if names is not None else frozenset({"*"}))
        if key in seen:
            continue
        seen.add(key)
        tree = ast.parse(path.read_text())
        if names is None and path == script:
            entries = [(e, True) for e in _import_nodes(_walk_imports(tree.body))]
            referenced: set[str] = set()
        else:  # module level (a name taken there is used only if our caller asked for it: a re-export)
            top_nodes = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
            used_defs = _used_functions(tree, names or set())
            entries = [(e, False) for e in _import_nodes(top_nodes)]
            entries += [(e, True) for e in _import_nodes(_walk_imports(used_defs))]
            # names the used definitions take from module-level imports (BUILTINS = {"photos": build_photos})
            referenced = {n.id for d in used_defs for n in ast.walk(d) if isinstance(n, ast.Name)}
        for (mod, taken, alias), called in entries:
            if taken is not None and not called:
                taken = taken & ((names or set()) | referenced)
            top = mod.split(".")[0]
            if top == "shortcut_psd":
                parts = mod.split(".")
                for i in range(1, len(parts)):  # a package's __init__ runs first
                    f = _library_file(".".join(parts[:i]))
                    if f is not None:
                        todo.append((f, set()))
                f = _library_file(mod)
                if f is None:
                    continue
                used = set(taken or ())
                if alias:  # m.f(...) through an alias
                    used |= {
                        n.attr
                        for n in ast.walk(tree)
                        if isinstance(n, ast.Attribute)
                        and isinstance(n.value, ast.Name)
                        and n.value.id == alias
                    }
                todo.append((f, used))
            elif (SCRIPTS / f"{top}.py").is_file():
                todo.append((SCRIPTS / f"{top}.py", set()))
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.add(top)
    return found


def rule_scripts_and_envs() -> list[tuple[str, Path, Path]]:
    """``(rule, script, env)`` for every rule of workflow/rules/*.smk (a rule block from ``rule`` to the next)."""
    out = []
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        starts = [m for m in re.finditer(r"^\s*rule\s*(\w*)\s*:", text, re.M)]
        for i, m in enumerate(starts):
            block = text[m.start() : starts[i + 1].start() if i + 1 < len(starts) else len(text)]
            conda = re.search(r'conda:\s*\n\s*"([^"]+)"', block)
            script = re.search(r'script:\s*\n\s*"([^"]+)"', block)
            if not script:
                continue
            name = m.group(1) or re.search(r"name:\s*(\S+)", block).group(1)
            assert conda, f"{smk.name}: rule {name} runs a script but names no conda environment"
            out.append(
                (name, (smk.parent / script.group(1)).resolve(), (smk.parent / conda.group(1)).resolve())
            )
    return out


def test_rules_found():
    rules = rule_scripts_and_envs()
    assert len(rules) >= 10 and {e for _, _, e in rules} == {e.resolve() for e in ENVS}


def missing_packages(script: Path, installed: set[str]) -> list[str]:
    dists = md.packages_distributions()
    missing = []
    for mod in sorted(third_party_imports(script)):
        names = {_norm(d) for d in dists.get(mod, [mod])}
        if not names & installed:
            missing.append(f"{mod} (from {', '.join(sorted(names))})")
    return missing


@pytest.mark.parametrize("rule,script,env", rule_scripts_and_envs(), ids=lambda v: getattr(v, "name", v))
def test_env_holds_every_package_its_rule_imports(rule, script, env):
    _, pip = env_packages(env)
    missing = missing_packages(script, set(pip))
    assert not missing, f"rule {rule} ({script.name}) imports {missing}, which {env.name} does not install"


def test_import_scan_sees_the_heavy_modules():
    """The scan itself: the training script reaches torch and timm through the library."""
    found = third_party_imports(SCRIPTS / "finetune.py")
    assert {"torch", "timm", "numpy", "yaml", "jsonschema"} <= found
    assert "torch" not in third_party_imports(SCRIPTS / "aggregate.py")
    _, pip = env_packages(REPO / "envs" / "torch.yaml")
    assert missing_packages(SCRIPTS / "finetune.py", set(pip) - {"timm"}) == ["timm (from timm)"]
    assert {"nilearn", "pydicom"} <= third_party_imports(SCRIPTS / "prepare_dataset.py")


# -- pip install . (not editable) ------------------------------------------------------------------------
@pytest.mark.slow
def test_wheel_installs_a_working_command_and_config_validation(tmp_path):
    """Build a wheel, install it (no dependencies, no index) into a fresh venv that borrows this
    environment's third-party packages, and run the command and config validation outside the source tree."""
    # build from a copy (setuptools writes build/ next to the sources), keeping the schema link's target
    tree = tmp_path / "tree"
    import shutil

    shutil.copytree(
        REPO / "src", tree / "src", symlinks=True, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )
    shutil.copytree(REPO / "workflow" / "schemas", tree / "workflow" / "schemas")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, tree / name)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(tree),
        ],
        check=True,
        timeout=600,
    )
    (wheel,) = wheels.glob("shortcut_psd-*.whl")
    import zipfile

    assert "shortcut_psd/config/config.schema.yaml" in zipfile.ZipFile(wheel).namelist()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        text=True,
        capture_output=True,
    ).stdout.strip()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        timeout=600,
    )
    # this environment's third-party packages, appended after the venv's own (the wheel wins); the
    # editable install's .pth files are not processed from a directory named in a .pth file
    ours = [p for p in sys.path if p.endswith("site-packages")]
    Path(site, "borrowed.pth").write_text("\n".join(ours) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run(
        [str(py), "-c", "import shortcut_psd; print(shortcut_psd.__file__)"],
        check=True,
        text=True,
        capture_output=True,
        cwd=tmp_path,
        env=env,
    ).stdout.strip()
    assert where.startswith(str(venv)), f"imported {where}, not the installed wheel"
    res = subprocess.run(
        [str(venv / "bin" / "shortcut-psd"), "--help"], text=True, capture_output=True, cwd=tmp_path, env=env
    )
    assert res.returncode == 0 and "inspect-weights" in res.stdout, res.stderr
    check = (
        "from shortcut_psd.config import load_yaml, prepare, SCHEMA_PATH\n"
        f"cfg = prepare(load_yaml({str(REPO / 'config.yaml')!r}), workdir={str(REPO)!r})\n"
        "assert str(SCHEMA_PATH).startswith(" + repr(str(venv)) + "), SCHEMA_PATH\n"
        "assert cfg['psd']['window'] == 'hann'\n"
        "try:\n"
        "    prepare({'psd': {'window': 'hamming'}}, workdir='.')\n"
        "except Exception as exc:\n"
        "    assert 'psd.window' in str(exc), exc\n"
        "else:\n"
        "    raise SystemExit('a bad config was accepted')\n"
        "print('validated')\n"
    )
    res = subprocess.run([str(py), "-c", check], text=True, capture_output=True, cwd=tmp_path, env=env)
    assert res.returncode == 0 and "validated" in res.stdout, res.stderr[-3000:]
