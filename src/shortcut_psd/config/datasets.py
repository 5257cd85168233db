"""Checks of the ``datasets`` and ``targets`` sections.

A built-in data set's ``params`` are keyword arguments of its builder (``shortcut_psd.data.builtin``
``BUILTINS``): the names it takes and their defaults are read from the builder's signature, so a typo is
refused here, naming the key and the closest real name, instead of failing inside the job with a
``TypeError``. ``image_size`` and ``seed`` are set by the workflow (from ``image.size`` and
``data_seed``), not by ``params``.
"""

from __future__ import annotations

import difflib
import inspect
import json
from pathlib import Path
from typing import Any

from shortcut_psd.config.common import _unknown
from shortcut_psd.data.builtin import BUILTINS
from shortcut_psd.errors import ConfigError

BUILTIN_DATASETS = tuple(BUILTINS)  # the registry of built-ins (shortcut_psd.data.builtin) is the one list
#: built-ins with exactly two classes (the only ones that can be a fine-tuning target)
BINARY_BUILTINS = ("brain_tissue",)
#: builder arguments the workflow passes itself: argument -> the config key that sets it
WORKFLOW_SET_PARAMS = {"image_size": "image.size", "seed": "data_seed"}


def builtin_params(builtin: str) -> dict[str, Any] | None:
    """The ``params`` a built-in data set takes, with their defaults (``inspect.Parameter.empty`` for a
    required one), read from its builder's signature; None if the builder takes any keyword."""
    from shortcut_psd.data.builtin import BUILTINS

    out: dict[str, Any] = {}
    for name, p in inspect.signature(BUILTINS[builtin]).parameters.items():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY):
            continue
        if name not in WORKFLOW_SET_PARAMS:
            out[name] = p.default
    return out


def _show_default(value: Any) -> str:
    if value is inspect.Parameter.empty:
        return "required"
    try:
        return "default " + json.dumps(value)
    except (TypeError, ValueError):
        return f"default {value!r}"


def check_builtin_params(key: str, builtin: str, params: dict) -> None:
    """Refuse a ``params`` key that built-in ``builtin``'s builder does not take (``key``: the data set's
    dotted key), naming the key, the closest allowed name and every allowed name with its default."""
    allowed = builtin_params(builtin)
    if allowed is None:
        return
    for name in params:
        if name in WORKFLOW_SET_PARAMS:
            raise ConfigError(
                f"config key '{key}.params.{name}': the {name} of a built-in data set is set by "
                f"'{WORKFLOW_SET_PARAMS[name]}' for every data set, not in params; remove it"
            )
    extra = sorted(set(params) - set(allowed))
    if not extra:
        return
    hints = []
    for name in extra:
        close = difflib.get_close_matches(name, list(allowed), n=1)
        hints.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    listed = ", ".join(f"{name} ({_show_default(d)})" for name, d in sorted(allowed.items()))
    raise ConfigError(
        f"config key '{key}.params': built-in data set '{builtin}' takes no parameter(s) "
        f"{', '.join(hints)}. Allowed: {listed}. Rename or remove the unknown key(s) "
        f"(they are the keyword arguments of shortcut_psd.data.builtin.BUILTINS['{builtin}'])"
    )


def _check_builtin(key: str, name: str, spec: dict) -> None:
    builtin = spec.get("builtin", name)
    if builtin not in BUILTIN_DATASETS:
        raise _unknown("built-in data set", builtin, BUILTIN_DATASETS, f"{key}.builtin")
    if "path" in spec:
        raise ConfigError(f"config key '{key}.path': a built-in data set takes no path; remove it")
    check_builtin_params(key, builtin, spec.get("params") or {})


def _check_user(key: str, spec: dict, workdir: Path) -> None:
    """A user format's entry: checked by the format registry that loads it (one place per format)."""
    from shortcut_psd.data.formats import check_format_config

    check_format_config(spec, key, workdir=workdir)


def check_datasets(config: dict, workdir: Path) -> None:
    """Each data set: a known built-in with parameters its builder takes, or a user format whose path
    exists and is of the right kind; split fractions that leave a training split."""
    for name, spec in config["datasets"].items():
        key = f"datasets.{name}"
        if spec["format"] == "builtin":
            _check_builtin(key, name, spec)
        else:
            _check_user(key, spec, workdir)
        if spec["val_fraction"] + spec["test_fraction"] >= 1:
            raise ConfigError(
                f"config key '{key}': val_fraction + test_fraction = {spec['val_fraction']} + "
                f"{spec['test_fraction']} must be below 1 (the rest is the training split)"
            )


def check_targets(config: dict) -> None:
    """Every target is a data set of the config, and a binary one."""
    datasets = config["datasets"]
    for i, target in enumerate(config["targets"]):
        if target not in datasets:
            raise _unknown("data set", target, datasets, f"targets[{i}]")
        spec = datasets[target]
        if spec["format"] == "builtin" and spec.get("builtin", target) not in BINARY_BUILTINS:
            raise ConfigError(
                f"config key 'targets[{i}]': built-in data set '{target}' "
                f"({spec.get('builtin', target)}) is not a binary task; the shortcut protocol needs a "
                f"positive and a negative class. Binary built-ins: {', '.join(BINARY_BUILTINS)}; or use "
                "your own two-class data set"
            )
