"""The cache of passed model-fit checks (shortcut_psd.config.fit_cache).

Every ``snakemake`` call checks the config; building each model to forward zeros costs seconds of torch
and timm imports. With every check of a config cached, the config check imports neither; only passes
are stored, a failing check always runs (and fails), and a cache that cannot be read or written is
ignored.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from shortcut_psd.config import check_model_fits, fit_cache, load_yaml, model_fit, prepare
from shortcut_psd.errors import ConfigError

DEFAULT = prepare(load_yaml(REPO / "config.yaml"), workdir=REPO, check_model=False)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty cache folder of this test's own; returns the cache file's path."""
    monkeypatch.setenv("SHORTCUT_PSD_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / fit_cache.CACHE_NAME


def _cfg(**image) -> dict:
    cfg = copy.deepcopy(DEFAULT)
    cfg["image"].update(image)
    return cfg


def _entries(path: Path) -> list[list]:
    return [json.loads(k) for k in json.loads(path.read_text())["fits"]] if path.exists() else []


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SHORTCUT_PSD_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert fit_cache.cache_dir() == tmp_path / "home" / ".cache" / "shortcut-psd"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert fit_cache.cache_dir() == tmp_path / "xdg" / "shortcut-psd"
    monkeypatch.setenv("SHORTCUT_PSD_CACHE", str(tmp_path / "own"))
    assert fit_cache.cache_dir() == tmp_path / "own"


def test_a_pass_is_cached_under_versions_arch_chans_kwargs_and_size(cache, monkeypatch):
    check_model_fits(_cfg())
    (entry,) = _entries(cache)
    torch_v, timm_v = fit_cache.versions()
    assert entry == [torch_v, timm_v, "test_resnet", 1, "{}", 32]

    def must_not_run(*args, **kwargs):
        raise AssertionError("a cached check ran again")

    monkeypatch.setattr(model_fit, "_check_fit", must_not_run)
    check_model_fits(_cfg())  # warm: nothing built
    monkeypatch.setattr(fit_cache, "versions", lambda: (torch_v, "0.0.0"))  # another timm: checked again
    with pytest.raises(AssertionError, match="cached check ran again"):
        check_model_fits(_cfg())


def test_a_failing_check_is_never_cached_nor_hidden(cache):
    small = _cfg(size=8)
    small["model"]["arch"] = "test_convnext"
    for _ in range(2):
        with pytest.raises(ConfigError, match="'image.size'"):
            check_model_fits(small)
    assert not any("test_convnext" in e for e in _entries(cache))
    ok = copy.deepcopy(small)
    ok["image"]["size"] = 32
    check_model_fits(ok)  # passes and is cached at 32 px ...
    assert [e[2:] for e in _entries(cache)] == [["test_convnext", 1, "{}", 32]]
    with pytest.raises(ConfigError, match="'image.size'"):  # ... which says nothing about 8 px
        check_model_fits(small)


@pytest.mark.parametrize("damage", ["garbage", "wrong-shape", "folder", "unwritable"])
def test_a_corrupt_unreadable_or_unwritable_cache_is_ignored(cache, damage, monkeypatch, tmp_path):
    if damage == "garbage":
        cache.parent.mkdir()
        cache.write_bytes(b"\x00{not json")
    elif damage == "wrong-shape":
        cache.parent.mkdir()
        cache.write_text(json.dumps({"format": fit_cache.FORMAT, "fits": ["a"]}))
    elif damage == "folder":
        cache.mkdir(parents=True)
    else:  # the cache folder cannot be created: a file is in its way
        (tmp_path / "blocker").write_text("")
        monkeypatch.setenv("SHORTCUT_PSD_CACHE", str(tmp_path / "blocker" / "cache"))
    check_model_fits(_cfg())
    check_model_fits(_cfg())
    if damage in ("garbage", "wrong-shape"):
        assert len(_entries(cache)) == 1, "rewritten whole"


def test_timm_init_architectures_are_checked_and_cached_like_the_model(cache, monkeypatch):
    cfg = _cfg()
    cfg["inits"]["hub"] = {"kind": "timm", "name": "test_resnet.r160_in1k", "in_chans": 1}
    check_model_fits(cfg)
    assert [e[2:] for e in _entries(cache)] == [
        ["test_resnet", 1, "{}", 32],
        ["test_resnet.r160_in1k", 1, "{}", 32],
    ]

    def must_not_run(*args, **kwargs):
        raise AssertionError("a cached check ran again")

    monkeypatch.setattr(model_fit, "_check_fit", must_not_run)
    check_model_fits(cfg)  # warm: nothing built
    cfg["inits"]["hub"]["kwargs"] = {"drop_rate": 0.1}  # another architecture record: checked
    with pytest.raises(AssertionError, match="cached check ran again"):
        check_model_fits(cfg)


def test_working_out_the_architectures_imports_neither_torch_nor_timm():
    """Which architecture each init builds is decided torch-free (shortcut_psd.model_records), so a
    code change costs no torch/timm import at planning time when the fits themselves are cached."""
    code = (
        "import sys; from shortcut_psd.config import model_fit; "
        "cfg = {'image': {'channels': 1}, 'model': {'arch': 'resnet18', 'kwargs': {}}, 'inits': {"
        "'hub': {'kind': 'timm', 'name': 'resnet50.tv_in1k'}, "
        "'rad': {'kind': 'file', 'path': 'w.pt', 'layout': 'radimagenet'}}}; "
        "print([c[2][0] for c in model_fit._resolve_checks(cfg)], 'torch' in sys.modules, 'timm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], text=True, capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["['resnet18',", "'resnet50.tv_in1k',", "'resnet50']", "False", "False"]


SPY = """
import json, sys, traceback

first = {}


class Spy:  # records which of our modules first imported torch / timm
    def find_spec(self, name, path=None, target=None):
        if name in ("torch", "timm") and name not in first:
            first[name] = [f"{f.filename}:{f.lineno}" for f in traceback.extract_stack() if "shortcut_psd" in f.filename]
        return None


sys.meta_path.insert(0, Spy())
from shortcut_psd.config import load_yaml, prepare

path = sys.argv[1]
prepare(load_yaml(path), [path], workdir=sys.argv[2])
print(json.dumps({"loaded": sorted({"torch", "timm"} & set(sys.modules)), "first": first}))
"""


def _check_in_a_fresh_process(config: Path, cache_dir: Path) -> dict:
    """Run the Snakefile's config check in a new process (as the next snakemake call would)."""
    res = subprocess.run(
        [sys.executable, "-c", SPY, str(config), str(REPO)],
        text=True,
        capture_output=True,
        env={**os.environ, "SHORTCUT_PSD_CACHE": str(cache_dir)},
        cwd=cache_dir.parent,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory) -> Path:
    """A cache filled by one config check of config.yaml in a fresh process."""
    cache_dir = tmp_path_factory.mktemp("warm") / "cache"
    cold = _check_in_a_fresh_process(REPO / "config.yaml", cache_dir)
    assert "timm" in cold["loaded"], "the cold check builds the model"
    assert (cache_dir / fit_cache.CACHE_NAME).is_file()
    return cache_dir


def test_a_warm_cache_imports_neither_torch_nor_timm(warm_cache):
    """A no-op rerun of the default study: every model check is in the cache, so the config check
    imports neither torch nor timm (the point of the cache: ~9 s of every snakemake call)."""
    warm = _check_in_a_fresh_process(REPO / "config.yaml", warm_cache)
    assert "timm" not in warm["loaded"], f"timm imported with a warm cache, from {warm['first'].get('timm')}"
    assert "torch" not in warm["loaded"], (
        f"torch imported with a warm cache, from {warm['first'].get('torch')}"
    )


def test_a_warm_cache_without_probes_imports_neither(warm_cache, tmp_path):
    """The same with the probes' band check (shortcut_psd.probes) off: every other check is torch-free."""
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["probes"]["enabled"] = False
    path = tmp_path / "no_probes.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    warm = _check_in_a_fresh_process(path, warm_cache)
    assert not warm["loaded"], f"imported with a warm cache: {warm['loaded']}, first from {warm['first']}"
