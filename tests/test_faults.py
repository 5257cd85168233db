"""Faults: killed jobs, unwritable or full output folders, diverging training.

- A process killed while writing leaves no file that looks finished (atomic writes), and a job killed
  mid-training leaves no model; the next run redoes exactly that job.
- An output folder that cannot be written (a file where a folder is needed, a path under /proc, a
  read-only or full file system) gives an OSError that names the path, and no partial file.
- Training that diverges (huge learning rate, NaN inputs) stops with TrainingError and writes nothing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from shortcut_psd import study
from shortcut_psd.errors import TrainingError
from shortcut_psd.io import atomic_path, save_npz, write_json
from shortcut_psd.models import Preprocessing, create_model, load_checkpoint, save_checkpoint

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}


# ------------------------------------------------------------------------------------------------
# Atomic writes under SIGKILL
# ------------------------------------------------------------------------------------------------
KILLED_WRITER = """
import os, signal, sys
from shortcut_psd.io import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "wb") as fh:
        fh.write(b"half of a checkpoint")
        fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)
"""


def test_process_killed_mid_write_leaves_no_final_file(tmp_path):
    out = tmp_path / "model.pt"
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(out)], env=ENV, capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    leftovers = list(tmp_path.iterdir())
    # only a hidden temporary name, which no rule declares as output
    assert all(p.name.startswith(".model.pt.") for p in leftovers), leftovers


def test_failed_write_keeps_the_previous_file(tmp_path):
    out = tmp_path / "metrics.json"
    write_json(out, {"auc": 0.9})
    with pytest.raises(ZeroDivisionError), atomic_path(out) as tmp:
        tmp.write_text('{"auc": ')
        _ = 1 / 0
    assert out.read_text().strip().startswith("{") and '"auc": 0.9' in out.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


# ------------------------------------------------------------------------------------------------
# Unwritable and full output folders
# ------------------------------------------------------------------------------------------------
def test_output_folder_that_is_a_file(tmp_path):
    blocker = tmp_path / "results" / "eval"
    blocker.parent.mkdir()
    blocker.write_text("a file where a folder is needed")
    with pytest.raises(OSError) as info:
        write_json(blocker / "scratch" / "metrics.json", {"auc": 0.5})
    msg = str(info.value)
    assert "cannot create output folder" in msg and str(blocker / "scratch") in msg, msg
    assert blocker.read_text() == "a file where a folder is needed"


def test_output_under_proc_names_the_path():
    target = Path("/proc/self/shortcut_psd_results.json")
    with pytest.raises(OSError) as info:
        write_json(target, {"x": 1})
    assert f"cannot write {target}" in str(info.value), str(info.value)


@contextlib.contextmanager
def tmpfs(where: Path, *options: str):
    """A small tmpfs at ``where`` (needs root / CAP_SYS_ADMIN); skips the test when mounting is refused."""
    where.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(where)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): {proc.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def _preprocessing():
    return Preprocessing(1, [0.5], [0.25]).to_dict()


def test_full_disk_gives_a_clear_error_and_no_partial_file(tmp_path):
    with tmpfs(tmp_path / "disk", "size=64k") as disk:
        npz = disk / "artifacts" / "images.npz"
        with pytest.raises(OSError) as info:
            save_npz(npz, images=np.random.default_rng(0).random((64, 1, 32, 32)))
        assert info.value.errno == errno.ENOSPC
        assert f"cannot write {npz}" in str(info.value) and "No space left" in str(info.value)

        ckpt = disk / "finetune" / "model.pt"
        model = create_model("test_resnet", num_classes=2, in_chans=1)
        with pytest.raises(OSError) as info:
            save_checkpoint(ckpt, model, {"preprocessing": _preprocessing()})
        assert info.value.errno == errno.ENOSPC and f"cannot write {ckpt}" in str(info.value)

        files = [p for p in disk.rglob("*") if p.is_file()]
        assert files == [], files  # neither the outputs nor their temporary files


def test_read_only_file_system_gives_a_clear_error(tmp_path):
    with tmpfs(tmp_path / "ro", "size=64k", "ro") as ro:
        with pytest.raises(OSError) as info:
            write_json(ro / "tables" / "auc.json", {})
        assert "cannot create output folder" in str(info.value) and str(ro / "tables") in str(info.value)
        with pytest.raises(OSError) as info:
            write_json(ro / "auc.json", {})
        assert info.value.errno == errno.EROFS and f"cannot write {ro / 'auc.json'}" in str(info.value)


# ------------------------------------------------------------------------------------------------
# Training divergence
# ------------------------------------------------------------------------------------------------
def _sets(n: int = 32, size: int = 16, nan: bool = False):
    rng = np.random.default_rng(0)
    out = {}
    for name in ("train", "val"):
        y = np.arange(n) % 2
        x = rng.random((n, 1, size, size)).astype(np.float32)
        x[y == 1, :, 4:8, 4:8] = 1.0
        if nan and name == "train":
            x[5, 0, 0, 0] = np.nan
        out[name] = (x, y)
    return out


def _finetune_like_the_script(tmp_path: Path, sets, recipe) -> None:
    """What workflow/scripts/finetune.py does: train, then write history, metrics and model."""
    model = create_model("test_resnet", num_classes=2, in_chans=1)
    prep = Preprocessing(1, [0.5], [0.25])
    model, history = study.finetune_condition(
        model, prep, sets, recipe=recipe, seed=0, device="cpu", progress=False
    )
    history.to_csv(tmp_path / "history.csv")
    save_checkpoint(tmp_path / "model.pt", model, {"preprocessing": prep.to_dict()})


@pytest.mark.parametrize(
    "recipe, nan",
    [
        pytest.param(
            {"epochs": 2, "lr": 1e30, "batch_size": 16, "augment": "none"}, False, id="lr-1e30-adamw"
        ),
        pytest.param(
            {"epochs": 2, "lr": 1e30, "batch_size": 16, "augment": "none", "optimizer": "sgd"},
            False,
            id="lr-1e30-sgd",
        ),
        pytest.param({"epochs": 2, "lr": 1e-3, "batch_size": 16, "augment": "none"}, True, id="nan-input"),
    ],
)
def test_divergence_stops_with_training_error_and_writes_nothing(recipe, nan, tmp_path):
    with pytest.raises(TrainingError) as info:
        _finetune_like_the_script(tmp_path, _sets(nan=nan), recipe)
    msg = str(info.value)
    assert "nothing was written" in msg or "lower the learning rate" in msg, msg
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------
# A job killed mid-training, then the next run
# ------------------------------------------------------------------------------------------------
def _image_folder(root: Path, per_split: dict[str, int]) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for s, n in per_split.items():
        for k, cls in enumerate(("neg", "pos")):
            (root / s / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = rng.integers(0, 200, (16, 16), dtype=np.uint8)
                if k:
                    img[4:8, 4:8] = 255
                Image.fromarray(img).save(root / s / cls / f"{i:03d}.png")


def _config(tmp_path: Path, **finetune) -> str:
    cfg = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    cfg.update(
        results="res",
        seeds=[0],
        datasets={"good": {"format": "imagefolder", "path": "good"}},
        targets=["good"],
        edits={"none": {"kind": "none"}},
        inits={"scratch": {"kind": "scratch"}},
        artifacts={"tag": {"kind": "tag"}},
        prevalences=[0, 1],
    )
    cfg["finetune"] = {
        "epochs": 25,
        "batch_size": 32,
        "lr": 0.003,
        "augment": "none",
        "patience": 0,
        **finetune,
    }
    name = f"study_{len(list(tmp_path.glob('study_*.yaml')))}.yaml"
    (tmp_path / name).write_text(yaml.safe_dump(cfg, sort_keys=False))
    return name


def _smk(tmp_path: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
    )


def _job_counts(out: str) -> dict[str, int]:
    counts, table = {}, False
    for line in out.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            table = True
            continue
        if table and len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
        elif table and counts and not line.strip():
            break
    return counts


@pytest.mark.slow
def test_job_killed_mid_training_is_redone_by_the_next_run(tmp_path):
    import psutil

    _image_folder(tmp_path / "good", {"train": 60, "val": 16, "test": 16})
    cfg = _config(tmp_path)
    cond = "scratch/good/none/p0/seed0"
    model = f"res/finetune/{cond}/model.pt"
    outputs = [
        tmp_path / model,
        tmp_path / f"res/finetune/{cond}/history.csv",
        tmp_path / f"res/eval/{cond}/metrics.json",
    ]
    log = tmp_path / f"res/logs/finetune/{cond}.log"

    smk = subprocess.Popen(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), model, "--cores", "1", "--configfile", cfg],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
        start_new_session=True,
    )
    killed = None
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and smk.poll() is None:
            if log.is_file() and "epoch 2/" in log.read_text():
                jobs = [
                    p
                    for p in psutil.Process(smk.pid).children(recursive=True)
                    if any(a.endswith("finetune.py") for a in p.cmdline())
                ]
                assert len(jobs) == 1, [p.cmdline() for p in jobs]
                killed = jobs[0].pid
                os.kill(killed, signal.SIGKILL)
                break
            time.sleep(0.05)
        out, _ = smk.communicate(timeout=120)
    finally:
        if smk.poll() is None:
            os.killpg(smk.pid, signal.SIGKILL)  # our own snakemake's process group only
            smk.wait()
    assert killed is not None, "training never started or finished before it could be killed:\n" + out[-3000:]
    assert smk.returncode != 0, out[-3000:]
    text = log.read_text()
    assert "epoch 2/" in text and "AUC clean" not in text
    assert not any(p.exists() for p in outputs), [p for p in outputs if p.exists()]
    assert not list((tmp_path / "res").rglob(".*.tmp")) and not list(
        (tmp_path / "res" / "finetune").rglob(".*")
    )
    assert (tmp_path / "res/data/good/data.npz").is_file()  # the job before it stays done

    # The next run plans exactly the killed job (its "Job stats" table comes before any job runs).
    rerun = _smk(tmp_path, model, "--cores", "1", "--configfile", cfg)
    out = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, out[-3000:]
    assert _job_counts(out) == {"finetune": 1, "total": 1}, out[-3000:]
    assert "rule prepare_dataset" not in out
    assert all(p.is_file() for p in outputs)
    net, meta = load_checkpoint(tmp_path / model)
    assert meta["condition"]["seed"] == 0 and "AUC clean" in log.read_text()

    # The same job with a diverging learning rate: it reruns (params changed), fails with TrainingError,
    # and leaves no model behind (Snakemake removes the old outputs; the script writes only after training).
    bad = _config(tmp_path, lr=1e30, epochs=1)
    diverged = _smk(tmp_path, model, "--cores", "1", "--configfile", bad)
    assert diverged.returncode != 0
    assert "TrainingError" in log.read_text(), log.read_text()
    assert not any(p.exists() for p in outputs)
