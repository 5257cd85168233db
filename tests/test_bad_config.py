"""Malformed or inconsistent configs are refused before any job is planned, naming the key.

A table of bad configs, each a small change to the default ``config.yaml``, goes through
``shortcut_psd.config.prepare`` (schema, defaults, semantic checks) and must raise ``ConfigError`` whose
message names the dotted key. A few go through the real CLI (``snakemake -n --configfile bad.yaml``):
non-zero exit, the key in the output, no job planned and nothing written under the results folder.
"""

from __future__ import annotations

import copy
import inspect
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from shortcut_psd.config import load_yaml, prepare
from shortcut_psd.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
DEFAULT = load_yaml(REPO / "config.yaml")
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def _set(cfg: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = cfg
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value


def change(dotted: str, value) -> Callable[[dict, Path], None]:
    def apply(cfg: dict, tmp: Path) -> None:
        _set(cfg, dotted, value)

    return apply


def add(section: str, name: str, spec: dict) -> Callable[[dict, Path], None]:
    def apply(cfg: dict, tmp: Path) -> None:
        cfg[section][name] = spec

    return apply


def delete(dotted: str) -> Callable[[dict, Path], None]:
    def apply(cfg: dict, tmp: Path) -> None:
        *parents, last = dotted.split(".")
        node = cfg
        for p in parents:
            node = node[p]
        del node[last]

    return apply


def user_dataset(fmt: str, path: str, *, make: str | None = None, target: bool = True, params=None):
    """Add data set 'mine' of ``fmt`` at ``path``; ``make`` creates a 'file' or 'dir' there first."""

    def apply(cfg: dict, tmp: Path) -> None:
        if make == "file":
            (tmp / path).write_text("not what was asked for\n")
        elif make == "dir":
            (tmp / path).mkdir(parents=True)
        cfg["datasets"]["mine"] = {"format": fmt, "path": path, **({"params": params} if params else {})}
        if target:
            cfg["targets"] = ["mine"]

    return apply


def touch(path: str) -> Callable[[dict, Path], None]:
    def apply(cfg: dict, tmp: Path) -> None:
        (tmp / path).write_bytes(b"")

    return apply


def both(*fns):
    def apply(cfg: dict, tmp: Path) -> None:
        for f in fns:
            f(cfg, tmp)

    return apply


# (id, change, dotted key the message must name)
CASES: list[tuple[str, Callable[[dict, Path], None], str]] = [
    # wrong types
    ("seeds-not-a-list", change("seeds", "0, 1"), "'seeds'"),
    ("image-size-string", change("image.size", "32px"), "'image.size'"),
    ("lr-string", change("finetune.lr", "fast"), "'finetune.lr'"),
    ("include-corners-string", change("psd.include_corners", "yes"), "'psd.include_corners'"),
    (
        "artifact-seed-follows-string",
        change("artifact_seed_follows_seed", "yes"),
        "'artifact_seed_follows_seed'",
    ),
    ("datasets-not-a-mapping", change("datasets", ["photos", "brain_tissue"]), "'datasets'"),
    # unknown names
    ("artifact-kind", change("artifacts.tag", {"kind": "tagg"}), "'artifacts.tag.kind'"),
    ("edit-kind", change("edits.whiten", {"kind": "blur"}), "'edits.whiten.kind'"),
    ("init-kind", change("inits.scratch", {"kind": "imagenet"}), "'inits.scratch.kind'"),
    ("model-arch", change("model.arch", "resnet5O"), "'model.arch'"),
    ("data-format", change("datasets.photos.format", "dicom"), "'datasets.photos.format'"),
    ("builtin-name", change("datasets.photos.builtin", "mnist"), "'datasets.photos.builtin'"),
    ("device", change("device", "gpu"), "'device'"),
    ("optimizer", change("pretrain.optimizer", "adam"), "'pretrain.optimizer'"),
    ("unknown-top-level-key", change("seed", 3), "'seed'"),
    ("unknown-nested-key", change("psd.windowing", "hann"), "'windowing'"),
    (
        "init-file-arch",
        both(
            touch("w.pt"),
            add(
                "inits",
                "w",
                {"kind": "file", "path": "w.pt", "arch": "resnet5O", "mean": [0.5], "std": [0.25]},
            ),
        ),
        "'inits.w.arch'",
    ),
    # parameters that a kind does not take, or out of range
    ("artifact-param-unknown", change("artifacts.tag", {"kind": "tag", "colour": "red"}), "'artifacts.tag'"),
    ("edit-param-unknown", change("edits.whiten", {"kind": "whiten", "cutoff_cpp": 0.2}), "'edits.whiten'"),
    ("artifact-band-reversed", change("artifacts.band_low.f_lo_cpp", 0.2), "'artifacts.band_low'"),
    ("nlm-h-above-1", change("artifacts.nlm_denoise.h", 2.0), "'artifacts.nlm_denoise'"),
    (
        "nlm-old-strength",
        change("artifacts.nlm_denoise", {"kind": "nlm_denoise", "strength": 1.0}),
        "'artifacts.nlm_denoise'",
    ),
    ("init-param-foreign", change("inits.scratch", {"kind": "scratch", "path": "w.pt"}), "'inits.scratch'"),
    # lists and ranges
    ("seeds-empty", change("seeds", []), "'seeds'"),
    ("seeds-duplicate", change("seeds", [0, 0]), "'seeds'"),
    ("seed-negative", change("seeds", [-1]), "'seeds"),
    ("prevalence-above-1", change("prevalences", [0, 1.5]), "'prevalences"),
    ("prevalence-negative", change("prevalences", [-0.1, 0.5]), "'prevalences"),
    ("prevalence-empty", change("prevalences", []), "'prevalences'"),
    ("prevalence-unnameable", change("prevalences", [0, 1e-7]), "'prevalences[1]'"),
    ("prevalence-same-path", change("prevalences", [0.1, 0.1000000001]), "'prevalences[1]'"),
    ("image-size-below-schema", change("image.size", 4), "'image.size'"),
    ("image-channels", change("image.channels", 2), "'image.channels'"),
    ("bands-not-increasing", change("psd.bands_cpp", [0.3, 0.1]), "'psd.bands_cpp'"),
    ("bands-equal", change("psd.bands_cpp", [0.2, 0.2]), "'psd.bands_cpp'"),
    ("bands-beyond-nyquist", change("psd.bands_cpp", [0.1, 0.7]), "'psd.bands_cpp"),
    ("head-seeds-empty", change("psd.head_seeds", []), "'psd.head_seeds'"),
    ("stats-ci-1", change("stats.ci", 1.0), "'stats.ci'"),
    ("probe-band-empty", change("probes.bands", [[0.01, 0.02]]), "'probes.bands'"),
    ("probe-too-many-bands", change("probes.n_bands", 40), "'probes.n_bands"),
    (
        "split-fractions",
        both(change("datasets.photos.val_fraction", 0.6), change("datasets.photos.test_fraction", 0.5)),
        "'datasets.photos'",
    ),
    (
        "mem-absurd-schema",
        change("resources.train", {"mem_mb": 10**12, "runtime": 60}),
        "'resources.train.mem_mb'",
    ),
    (
        "mem-absurd-node",
        change("resources.train", {"mem_mb": 3_000_000, "runtime": 60}),
        "'resources.train.mem_mb'",
    ),
    ("runtime-missing", change("resources.psd", {"mem_mb": 4000}), "'resources.psd.runtime'"),
    ("datasets-missing", delete("datasets"), "'datasets'"),
    ("artifact-kind-missing", change("artifacts.tag", {"size": 3}), "'artifacts.tag.kind'"),
    # the image is too small for the model
    ("convnext-at-8px", both(change("model.arch", "test_convnext"), change("image.size", 8)), "'image.size'"),
    ("vit-fixed-img-size", change("model.arch", "test_vit3"), "'image.size'"),
    ("model-kwargs-clash", change("model.kwargs", {"num_classes": 10}), "'model.kwargs'"),
    # references between sections
    ("target-unknown", change("targets", ["brain"]), "'targets[0]'"),
    ("target-not-binary", change("targets", ["photos"]), "'targets[0]'"),
    ("init-unknown-source", change("inits.photos.source", "imagenet"), "'inits.photos.source'"),
    ("init-unknown-edit", change("inits.photos_whiten.edit", "whitened"), "'inits.photos_whiten.edit'"),
    ("init-source-missing", change("inits.photos", {"kind": "source"}), "'inits.photos.source'"),
    ("init-timm-no-name", change("inits.scratch", {"kind": "timm"}), "'inits.scratch.name'"),
    (
        "init-mean-without-std",
        add("inits", "w", {"kind": "timm", "name": "resnet18.a1_in1k", "mean": [0.5]}),
        "'inits.w'",
    ),
    ("init-file-no-mean", add("inits", "w", {"kind": "file", "path": "w.pt"}), "'inits.w.mean'"),
    ("artifact-reserved-none", add("artifacts", "none", {"kind": "tag"}), "'artifacts.none'"),
    ("name-with-slash", add("artifacts", "a/b", {"kind": "tag"}), "'artifacts"),
    ("edit-none-removed", delete("edits.none"), "'inits.photos.edit'"),
    # paths
    ("results-climbs-out", change("results", "../elsewhere"), "'results'"),
    ("results-climbs-out-nested", change("results", "a/../../b"), "'results'"),
    ("results-empty", change("results", ""), "'results'"),
    ("csv-missing", user_dataset("csv", "no/such/manifest.csv"), "'datasets.mine.path'"),
    ("imagefolder-missing", user_dataset("imagefolder", "no_such_folder"), "'datasets.mine.path'"),
    ("npz-missing", user_dataset("npz", "no_such.npz"), "'datasets.mine.path'"),
    ("imagefolder-is-a-file", user_dataset("imagefolder", "images.txt", make="file"), "'datasets.mine.path'"),
    ("npz-is-a-folder", user_dataset("npz", "arrays.npz", make="dir"), "'datasets.mine.path'"),
    (
        "user-format-unknown-option",
        user_dataset("imagefolder", "imgs", make="dir", params={"resize": "crop"}),
        "'datasets.mine.params'",
    ),
    ("user-format-no-path", change("datasets.mine", {"format": "csv"}), "'datasets.mine.path'"),
    ("builtin-with-path", change("datasets.photos.path", "photos/"), "'datasets.photos.path'"),
    (
        "builtin-param-typo",
        change("datasets.photos.params", {"crop_per_image": 100}),
        "'datasets.photos.params'",
    ),
    (
        "builtin-target-param-typo",
        change("datasets.brain_tissue.params", {"slice_stp": 2}),
        "'datasets.brain_tissue.params'",
    ),
    (
        "builtin-param-set-by-workflow",
        change("datasets.clinical.params", {"seed": 3}),
        "'datasets.clinical.params.seed'",
    ),
    (
        "file-init-missing",
        add("inits", "w", {"kind": "file", "path": "weights/none.pt", "mean": [0.5], "std": [0.25]}),
        "'inits.w.path'",
    ),
]


@pytest.mark.parametrize("fn, key", [pytest.param(fn, key, id=i) for i, fn, key in CASES])
def test_bad_config_is_refused_naming_the_key(fn, key, tmp_path):
    cfg = copy.deepcopy(DEFAULT)
    fn(cfg, tmp_path)
    cfgfile = tmp_path / "bad.yaml"
    cfgfile.write_text(yaml.safe_dump(cfg, sort_keys=False))
    with pytest.raises(ConfigError) as info:
        prepare(cfg, [cfgfile], workdir=tmp_path)
    assert key in str(info.value), str(info.value)


@pytest.mark.parametrize("old", ["strength", "min_sigma", "sigma_estimator"])
def test_nlm_denoise_old_keys_name_the_key_and_the_replacement(old, tmp_path):
    cfg = copy.deepcopy(DEFAULT)
    cfg["artifacts"]["nlm_denoise"] = {"kind": "nlm_denoise", old: 1.0}
    cfgfile = tmp_path / "bad.yaml"
    cfgfile.write_text(yaml.safe_dump(cfg, sort_keys=False))
    with pytest.raises(ConfigError) as info:
        prepare(cfg, [cfgfile], workdir=tmp_path)
    msg = str(info.value)
    assert "'artifacts.nlm_denoise'" in msg and f"'{old}'" in msg and "removed" in msg, msg
    assert ("give h" if old == "strength" else "give sigma") in msg, msg


@pytest.mark.parametrize(
    "dataset, typo, meant",
    [
        ("photos", "crop_per_image", "crops_per_image"),
        ("clinical", "shortsides", "short_sides"),
        ("brain_tissue", "slice_stp", "slice_step"),
    ],
)
def test_builtin_param_typo_names_key_suggestion_and_allowed(dataset, typo, meant, tmp_path):
    """A typo in a built-in's params is refused by the config check (it used to pass and fail inside the
    job with a bare TypeError), naming the key, the close match, every allowed name and the fix; the
    allowed names are the builder's keyword arguments less those the workflow sets itself."""
    from shortcut_psd.data.builtin import BUILTINS

    cfg = copy.deepcopy(DEFAULT)
    cfg["datasets"][dataset]["params"] = {typo: 1}
    with pytest.raises(ConfigError) as info:
        prepare(cfg, workdir=tmp_path, check_model=False)
    msg = str(info.value)
    assert f"'datasets.{dataset}.params'" in msg and f"'{typo}'" in msg, msg
    assert f"did you mean '{meant}'?" in msg and "Rename or remove" in msg, msg
    allowed = set(inspect.signature(BUILTINS[dataset]).parameters) - {"image_size", "seed"}
    assert allowed and all(f"{name} (" in msg for name in allowed), msg


def test_builtin_params_the_builder_takes_pass(tmp_path):
    cfg = copy.deepcopy(DEFAULT)
    cfg["datasets"]["photos"]["params"] = {"crops_per_image": 100, "downscale": 3.0}
    cfg["datasets"]["brain_tissue"]["params"] = {"slice_step": 2, "axis": "coronal"}
    prepare(cfg, workdir=tmp_path, check_model=False)


def test_table_is_large_enough():
    assert len(CASES) >= 25
    assert len({i for i, _, _ in CASES}) == len(CASES)


def test_default_and_smoke_configs_pass(tmp_path):
    for name in ("config.yaml", "configs/smoke.yaml"):
        cfg = load_yaml(REPO / name)
        prepare(cfg, [REPO / name], workdir=REPO)


# Duplicate keys: YAML keeps the last silently, so they can only be caught on the file's text.
DUPLICATES = [
    (
        "inits-duplicate",
        "inits:\n  scratch: {kind: scratch}\n  photos: {kind: source, source: photos}\n"
        "  photos: {kind: source, source: photos, edit: whiten}\n",
        "'inits.photos'",
    ),
    (
        "artifacts-duplicate",
        "artifacts:\n  tag: {kind: tag}\n  band: {kind: band_noise}\n  tag: {kind: lowpass}\n",
        "'artifacts.tag'",
    ),
    ("top-level-duplicate", "seeds: [0]\nimage: {size: 32}\nseeds: [1]\n", "'seeds'"),
    ("param-duplicate", "artifacts:\n  tag: {kind: tag, size: 3, size: 4}\n", "'artifacts.tag.size'"),
]


@pytest.mark.parametrize("text, key", [pytest.param(t, k, id=i) for i, t, k in DUPLICATES])
def test_duplicate_yaml_keys_are_refused(text, key, tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        prepare(copy.deepcopy(DEFAULT), [path], workdir=tmp_path)
    msg = str(info.value)
    assert key in msg and "twice" in msg and str(path) in msg, msg


def test_yaml_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("seeds: [0, 1\nimage: {size: 32}\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        prepare(copy.deepcopy(DEFAULT), [path], workdir=tmp_path)


# ------------------------------------------------------------------------------------------------
# Through the real command line: non-zero exit, the key named, no job planned, nothing written.
# ------------------------------------------------------------------------------------------------
CLI_CASES = [
    ("artifact-kind", {"artifacts": {"tag": {"kind": "tagg"}}}, "artifacts.tag.kind"),
    ("prevalence-out-of-range", {"prevalences": [0, 1.5]}, "prevalences"),
    ("init-unknown-source", {"inits": {"bad": {"kind": "source", "source": "imagenet"}}}, "inits.bad.source"),
]


@pytest.mark.parametrize("patch, key", [pytest.param(p, k, id=i) for i, p, k in CLI_CASES])
def test_cli_refuses_bad_config_before_planning(patch, key, tmp_path):
    cfg = load_yaml(REPO / "configs" / "smoke.yaml")
    cfg["results"] = "res"
    for section, value in patch.items():
        if isinstance(value, dict) and isinstance(cfg.get(section), dict):
            cfg[section].update(value)
        else:
            cfg[section] = value
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = subprocess.run(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-n", "--cores", "1", "--configfile", "bad.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert key in out, out
    assert "ConfigError" in out or "config key" in out, out
    assert "Job stats" not in out and "rule prepare_dataset" not in out, out
    assert not (tmp_path / "res").exists()
    after = sorted(p.name for p in tmp_path.iterdir() if p.name != ".snakemake")
    assert after == before
