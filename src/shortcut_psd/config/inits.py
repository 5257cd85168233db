"""Checks of the ``inits`` section (what fine-tuning starts from); whether each init's architecture fits
the images is :mod:`shortcut_psd.config.model_fit`'s."""

from __future__ import annotations

from pathlib import Path

from shortcut_psd.config.common import _unknown
from shortcut_psd.errors import ConfigError

#: keys each init kind takes (besides kind, edit and strict, which every kind accepts)
INIT_KEYS = {
    "scratch": set(),
    "source": {"source", "edit"},
    "timm": {"name", "in_chans", "mean", "std", "arch", "kwargs"},
    "file": {"path", "arch", "in_chans", "mean", "std", "strict", "layout", "kwargs"},
}


def _check_source(key: str, spec: dict, config: dict) -> None:
    if "source" not in spec:
        raise ConfigError(f"config key '{key}.source' is required for kind 'source': name a data set")
    if spec["source"] not in config["datasets"]:
        raise _unknown("source data set", spec["source"], config["datasets"], f"{key}.source")
    if spec["edit"] not in config["edits"]:
        raise _unknown("edit", spec["edit"], config["edits"], f"{key}.edit")


def _check_file(key: str, spec: dict, workdir: Path) -> None:
    if "path" not in spec:
        raise ConfigError(f"config key '{key}.path' is required for kind 'file': a local state dict")
    for k in ("mean", "std"):
        if k not in spec and spec.get("layout", "timm") == "timm":
            raise ConfigError(
                f"config key '{key}.{k}' is required for kind 'file': the input normalisation the "
                "weights were trained with, for images scaled to [0, 1] (for example ImageNet's "
                "[0.485, 0.456, 0.406] / [0.229, 0.224, 0.225]), or name a layout that brings it "
                "(layout: torchvision | radimagenet)"
            )
    if not (workdir / spec["path"]).is_file():
        raise ConfigError(
            f"config key '{key}.path': checkpoint {spec['path']} does not exist; fix the path "
            "or convert the weights first (see README, 'Your own weights')"
        )


def _check_normalisation(key: str, spec: dict, config: dict) -> None:
    if ("mean" in spec) != ("std" in spec):
        raise ConfigError(
            f"config key '{key}': mean {spec.get('mean')} and std {spec.get('std')}: give both, or neither"
        )
    if "mean" in spec:
        chans = spec.get("in_chans", config["image"]["channels"])
        for k in ("mean", "std"):
            if len(spec[k]) not in (1, chans):
                raise ConfigError(f"config key '{key}.{k}' needs 1 or {chans} values, got {len(spec[k])}")


def check_inits(config: dict, workdir: Path) -> None:
    """Each init takes only its kind's keys; a source init names a data set and an edit of the config,
    a timm init a model name, a file init an existing checkpoint and its normalisation."""
    for name, spec in config["inits"].items():
        key = f"inits.{name}"
        kind = spec["kind"]
        extra = sorted(set(spec) - (INIT_KEYS[kind] | {"kind", "edit", "strict"}))
        if extra:
            raise ConfigError(f"config key '{key}': {extra} do not apply to kind '{kind}'; remove them")
        if kind == "source":
            _check_source(key, spec, config)
        if kind == "timm" and "name" not in spec:
            raise ConfigError(f"config key '{key}.name' is required for kind 'timm', e.g. resnet50.a1_in1k")
        if kind == "file":
            _check_file(key, spec, workdir)
        _check_normalisation(key, spec, config)
