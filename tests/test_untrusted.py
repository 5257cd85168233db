"""Untrusted files: checkpoints, pickles inside NPZ files, manifests and config values cannot run code or
reach outside their folder.

- Every ``torch.load`` in src/ and workflow/ passes ``weights_only=True`` (checked on the syntax tree);
  no ``allow_pickle=True``, ``pickle.load``, unsafe YAML loader, ``eval``/``exec``, or shell commands.
- A malicious pickle (whose ``__reduce__`` would create a marker file) given as a ``file:`` init, as a
  pipeline checkpoint, or as a data set is refused with the project's error, and the marker never appears.
- Config paths cannot climb out (``results: ../x``); CSV manifest paths cannot leave the manifest's
  folder unless ``allow_outside`` is set.
"""

from __future__ import annotations

import ast
import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import run_keep_going

from shortcut_psd import study
from shortcut_psd.config import load_yaml, prepare
from shortcut_psd.data.store import load_imageset
from shortcut_psd.data.user import load_user_dataset
from shortcut_psd.errors import ConfigError, DataError, ModelError
from shortcut_psd.models import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    build_init,
    create_model,
    load_checkpoint,
)

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}


# ------------------------------------------------------------------------------------------------
# Static checks over the code that handles files and config values
# ------------------------------------------------------------------------------------------------
def python_files() -> list[Path]:
    files = sorted((REPO / "src").rglob("*.py")) + sorted((REPO / "workflow").rglob("*.py"))
    assert len(files) > 10
    return files


def workflow_texts() -> list[Path]:
    """Snakemake files (not valid Python for ast): checked by regular expression."""
    return [REPO / "Snakefile", *sorted((REPO / "workflow").rglob("*.smk"))]


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _name(func: ast.expr) -> str:
    """Dotted name of a call target: torch.load, np.load, eval, yaml.load ..."""
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    parts.append(func.id if isinstance(func, ast.Name) else "<expr>")  # model.to(dev).eval() is not eval()
    return ".".join(reversed(parts))


def _kw(call: ast.Call, name: str):
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def test_every_torch_load_passes_weights_only_true():
    found = []
    for path in python_files():
        for call in _calls(ast.parse(path.read_text(), str(path))):
            if _name(call.func) == "torch.load":
                where = f"{path.relative_to(REPO)}:{call.lineno}"
                value = _kw(call, "weights_only")
                assert isinstance(value, ast.Constant) and value.value is True, (
                    f"{where}: torch.load without weights_only=True"
                )
                found.append(where)
    assert found, "no torch.load call found: the scan is not looking at the right files"
    for path in workflow_texts():
        for m in re.finditer(r"torch\.load\(([^)]*)\)", path.read_text()):
            assert "weights_only=True" in m.group(1), f"{path}: {m.group(0)}"


def test_no_unsafe_deserialisation_or_code_execution():
    forbidden = {
        "eval",
        "exec",
        "compile",
        "__import__",
        "pickle.load",
        "pickle.loads",
        "pd.read_pickle",
        "pandas.read_pickle",
        "joblib.load",
        "dill.load",
        "yaml.unsafe_load",
        "yaml.full_load",
        "os.system",
        "os.popen",
        "torch.jit.load",
    }
    problems = []
    for path in python_files():
        for call in _calls(ast.parse(path.read_text(), str(path))):
            name, where = _name(call.func), f"{path.relative_to(REPO)}:{call.lineno}"
            if name in forbidden:
                problems.append(f"{where}: {name}(")
            allow = _kw(call, "allow_pickle")
            if (
                name.endswith("load")
                and allow is not None
                and not (isinstance(allow, ast.Constant) and allow.value is False)
            ):
                problems.append(f"{where}: {name}(allow_pickle=...)")
            if name == "yaml.load":
                loader = _kw(call, "Loader")
                ok = (
                    isinstance(loader, ast.Name)
                    and loader.id in ("_UniqueKeyLoader",)
                    or (isinstance(loader, ast.Attribute) and loader.attr in ("SafeLoader", "CSafeLoader"))
                )
                if not ok:
                    problems.append(f"{where}: yaml.load without a safe Loader")
            shell = _kw(call, "shell")
            if name.startswith("subprocess.") and isinstance(shell, ast.Constant) and shell.value:
                problems.append(f"{where}: {name}(shell=True)")
    for path in workflow_texts():
        text = path.read_text()
        for m in re.finditer(r"(?<![\w.])(eval|exec|os\.system|pickle\.loads?)\(", text):
            line = text.count("\n", 0, m.start()) + 1
            problems.append(f"{path.relative_to(REPO)}:{line}: {m.group(0)}")
        if re.search(r"^\s*(shell|run):", text, flags=re.MULTILINE):
            problems.append(
                f"{path.relative_to(REPO)}: a shell:/run: directive (config values could reach a shell)"
            )
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------------------------
# Malicious pickles
# ------------------------------------------------------------------------------------------------
class Evil:
    """Unpickling this calls open(marker, 'w'): a file appears if (and only if) the pickle is trusted."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _state_dict():
    return create_model("test_resnet", num_classes=2, in_chans=1).state_dict()


def evil_weights(path: Path, marker: Path, legacy: bool = False) -> Path:
    """A plausible weights file (a real state dict) with a code-running object beside it."""
    torch.save(
        {"state_dict": _state_dict(), "epoch": Evil(marker)}, path, _use_new_zipfile_serialization=not legacy
    )
    return path


def evil_checkpoint(path: Path, marker: Path) -> Path:
    """Looks like the pipeline's own checkpoint, with the object hidden in its meta."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "state_dict": _state_dict(),
        "meta": {"arch": "test_resnet", "num_classes": 2, "in_chans": 1, "note": Evil(marker)},
    }
    torch.save(payload, path)
    return path


def test_the_payload_is_real(tmp_path):
    """Loading the file the unsafe way does create the marker, so the refusals below mean something."""
    marker = tmp_path / "pwned"
    path = evil_weights(tmp_path / "w.pt", marker)
    code = f"import torch; torch.load({str(path)!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV, cwd=REPO, capture_output=True)
    assert marker.exists()


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-format"])
def test_malicious_file_init_is_refused(tmp_path, legacy):
    marker = tmp_path / "pwned"
    path = evil_weights(tmp_path / "radimagenet.pt", marker, legacy=legacy)
    spec = {
        "kind": "file",
        "path": str(path),
        "arch": "test_resnet",
        "in_chans": 1,
        "mean": [0.5],
        "std": [0.25],
    }
    with pytest.raises(ModelError) as info:
        build_init(spec, arch="test_resnet", num_classes=2, in_chans_data=1)
    assert "refused to load" in str(info.value) and str(path) in str(info.value)
    with pytest.raises(ModelError):
        study.make_init(
            spec,
            checkpoint=str(path),
            arch="test_resnet",
            num_classes=2,
            clean_train_images=np.zeros((4, 1, 16, 16), np.float32),
            seed=0,
            device="cpu",
        )
    assert not marker.exists()


def test_malicious_pipeline_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = evil_checkpoint(tmp_path / "model.pt", marker)
    with pytest.raises(ModelError, match="refused to load"):
        load_checkpoint(path)
    with pytest.raises(ModelError, match="refused to load"):
        build_init(
            {"kind": "source", "checkpoint": str(path)}, arch="test_resnet", num_classes=2, in_chans_data=1
        )
    assert not marker.exists()


def test_plain_pickle_file_is_refused(tmp_path):
    import pickle

    marker = tmp_path / "pwned"
    path = tmp_path / "weights.pkl"
    path.write_bytes(pickle.dumps({"state_dict": {}, "x": Evil(marker)}, protocol=2))
    with pytest.raises(ModelError):
        load_checkpoint(path)
    assert not marker.exists()


def _evil_npz(path: Path, marker: Path, **arrays) -> Path:
    obj = np.empty(1, dtype=object)
    obj[0] = Evil(marker)
    np.savez(path, **arrays, **{k: obj for k in ("classes", "train_labels") if k not in arrays})
    return path


def test_pickles_inside_npz_files_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    x = np.zeros((4, 16, 16), np.float32)
    user = _evil_npz(tmp_path / "medmnist.npz", marker, train_images=x)
    with pytest.raises(DataError, match=str(user)):
        load_user_dataset({"format": "npz", "path": str(user)}, image_size=16)
    prepared = _evil_npz(
        tmp_path / "data.npz",
        marker,
        images=x[:, None],
        labels=np.zeros(4, int),
        split=np.array(["train"] * 4),
        group=np.array(["a"] * 4),
    )
    with pytest.raises(DataError, match=str(prepared)):
        load_imageset(prepared)
    with pytest.raises((DataError, ValueError)):
        study.load_condition_data(str(prepared), 0.5)
    assert not marker.exists()


# ------------------------------------------------------------------------------------------------
# Paths that try to leave their folder
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("results", ["../x", "a/../../x", "results/../../x"])
def test_results_cannot_climb_out(results, tmp_path):
    cfg = copy.deepcopy(load_yaml(REPO / "config.yaml"))
    cfg["results"] = results
    with pytest.raises(ConfigError, match="config key 'results'"):
        prepare(cfg, workdir=tmp_path, check_model=False)


def test_results_absolute_or_inside_is_accepted(tmp_path):
    for results in (str(tmp_path / "out"), "out/study1"):
        cfg = copy.deepcopy(load_yaml(REPO / "config.yaml"))
        cfg["results"] = results
        prepare(cfg, workdir=tmp_path, check_model=False)


def _manifest_with(tmp_path: Path, escaping: str) -> Path:
    from PIL import Image

    data = tmp_path / "study" / "data"
    rng = np.random.default_rng(0)
    rows = ["path,label"]
    for cls in ("neg", "pos"):
        (data / cls).mkdir(parents=True, exist_ok=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(data / cls / f"{i}.png")
            rows.append(f"{cls}/{i}.png,{cls}")
    secret = tmp_path / "elsewhere" / "secret.png"
    secret.parent.mkdir()
    Image.fromarray(np.full((16, 16), 7, np.uint8)).save(secret)
    rows.append(f"{escaping.format(secret=secret)},pos")
    (data / "manifest.csv").write_text("\n".join(rows) + "\n")
    return data / "manifest.csv"


@pytest.mark.parametrize(
    "escaping", ["../../elsewhere/secret.png", "{secret}", "neg/../../../elsewhere/secret.png"]
)
def test_manifest_paths_cannot_leave_the_manifest_folder(tmp_path, escaping):
    manifest = _manifest_with(tmp_path, escaping)
    with pytest.raises(DataError) as info:
        load_user_dataset({"format": "csv", "path": str(manifest)}, image_size=16)
    assert "outside the manifest's folder" in str(info.value) and "allow_outside" in str(info.value)
    ds = load_user_dataset({"format": "csv", "path": str(manifest), "allow_outside": True}, image_size=16)
    assert len(ds.images) == 13


# ------------------------------------------------------------------------------------------------
# Config files: YAML tags that construct Python objects are refused
# ------------------------------------------------------------------------------------------------
def test_yaml_python_tags_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f'results: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(ConfigError, match="evil.yaml"):
        load_yaml(path)
    assert not marker.exists()


# ------------------------------------------------------------------------------------------------
# Through the workflow: a malicious file: init fails its jobs and runs nothing
# ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_workflow_refuses_a_malicious_file_init(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for s, n in {"train": 12, "val": 6, "test": 6}.items():
        for cls in ("neg", "pos"):
            (tmp_path / "target" / s / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(
                    tmp_path / "target" / s / cls / f"{i}.png"
                )
    marker = tmp_path / "pwned"
    evil_weights(tmp_path / "weights.pt", marker)
    cfg = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    cfg.update(
        results="res",
        seeds=[0],
        targets=["target"],
        edits={"none": {"kind": "none"}},
        datasets={"target": {"format": "imagefolder", "path": "target"}},
        inits={
            "mine": {
                "kind": "file",
                "path": "weights.pt",
                "arch": "test_resnet",
                "in_chans": 1,
                "mean": [0.5],
                "std": [0.25],
            }
        },
        artifacts={"tag": {"kind": "tag"}},
        prevalences=[0],
    )
    psd = "res/psd/pretrained/mine/target/seed0/psd.npz"
    model = "res/finetune/mine/target/none/p0/seed0/model.pt"
    proc = run_keep_going(tmp_path, cfg, psd, model)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    for log in (
        "res/logs/finetune/mine/target/none/p0/seed0.log",
        "res/logs/psd/pretrained/mine/target/seed0.log",
    ):
        text = (tmp_path / log).read_text()
        assert "ModelError" in text and "refused to load" in text and "weights.pt" in text, text
    assert not (tmp_path / psd).exists() and not (tmp_path / model).exists()
    assert not marker.exists()
