"""The checks a schema cannot express, section by section, in the order :func:`check_semantics` runs them.

Each section's rules live where it is natural: data sets and targets in
:mod:`shortcut_psd.config.datasets`, inits in :mod:`shortcut_psd.config.inits`, edits and artifacts in
:mod:`shortcut_psd.edits` / :mod:`shortcut_psd.artifacts` (through :mod:`shortcut_psd.config.kinds`), the
probes' bands in :mod:`shortcut_psd.probes`, model fits in :mod:`shortcut_psd.config.model_fit`. The small
ones (results folder, prevalences, PSD bands, resources) are here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from shortcut_psd.config.datasets import check_datasets, check_targets
from shortcut_psd.config.grid import fmt_p
from shortcut_psd.config.inits import check_inits
from shortcut_psd.config.kinds import check_artifacts, check_edits
from shortcut_psd.config.model_fit import check_model_fits
from shortcut_psd.errors import ConfigError


def check_results(config: dict) -> None:
    """The results folder is named and stays inside the working directory (or is absolute)."""
    if not str(config["results"]).strip():
        raise ConfigError(
            "config key 'results': '' is empty; outputs would land at the file system root ('/data', "
            "'/tables'). Give a folder, for example 'results'"
        )
    results = Path(config["results"])
    if results.is_absolute() is False and ".." in results.parts:
        raise ConfigError(
            f"config key 'results': {config['results']!r} climbs out of the working directory with '..'; "
            "give a folder inside it or an absolute path"
        )


def check_prevalences(config: dict) -> None:
    """Each prevalence has its own plain-decimal name in file paths."""
    names: dict[str, float] = {}
    for i, p in enumerate(config["prevalences"]):
        name = fmt_p(p)
        if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", name):
            raise ConfigError(
                f"config key 'prevalences[{i}]': {p!r} cannot be written as a plain decimal in file names "
                f"('p{name}'); use 0 or a value of at least 0.0001"
            )
        if name in names:
            raise ConfigError(
                f"config key 'prevalences[{i}]': {p!r} and {names[name]!r} both become 'p{name}' in file "
                "names; give prevalences that differ in their first 6 significant digits"
            )
        names[name] = p


def check_psd(config: dict) -> None:
    bands = config["psd"]["bands_cpp"]
    if not bands[0] < bands[1]:
        raise ConfigError(
            f"config key 'psd.bands_cpp': {bands} must be increasing (low/mid edge < mid/high edge)"
        )


def check_resources(config: dict) -> None:
    for rule, req in config["resources"].items():
        if req["mem_mb"] > 2_000_000:
            raise ConfigError(
                f"config key 'resources.{rule}.mem_mb': {req['mem_mb']} MB is more than any node has"
            )


def check_probes(config: dict) -> None:
    """The probes' bands must hold a frequency bin of the images (rule of shortcut_psd.probes)."""
    probes_cfg = config.get("probes") or {}
    if not probes_cfg.get("enabled", False):
        return
    from shortcut_psd.probe_geometry import resolve_bands

    size = int(config["image"]["size"])
    try:
        resolve_bands(probes_cfg.get("bands", "auto"), size, size, int(probes_cfg.get("n_bands", 8)))
    except ConfigError as exc:
        key = re.split(r"[=:]", str(exc), maxsplit=1)[0]
        raise ConfigError(f"config key '{key}' (image.size {size}): {exc}") from exc


def check_semantics(config: dict, *, workdir: str | os.PathLike = ".", check_model: bool = True) -> None:
    """Checks the schema cannot express; each failure names the key and the fix."""
    workdir = Path(workdir)
    check_results(config)
    check_datasets(config, workdir)
    check_targets(config)
    check_prevalences(config)
    check_edits(config)
    check_inits(config, workdir)
    check_artifacts(config)
    check_psd(config)
    check_resources(config)
    if check_model:
        check_model_fits(config)
    check_probes(config)
