"""Checks of the ``edits`` and ``artifacts`` sections.

The rules live with the code they protect: the parameters each kind takes and their ranges are checked
by :mod:`shortcut_psd.edits` (``edit_defaults``, ``check_edit_params``) and :mod:`shortcut_psd.artifacts`
(``artifact_defaults``, ``check_retired_params``, ``check_artifact_params``); this module names the config
key in their messages.
"""

from __future__ import annotations

from shortcut_psd.config.common import _check_params
from shortcut_psd.config.grid import CLEAN
from shortcut_psd.errors import ConfigError


def _kind_params(spec: dict) -> dict:
    return {k: v for k, v in spec.items() if k != "kind"}


def check_edits(config: dict) -> None:
    """Each edit takes only its kind's parameters, within their ranges."""
    from shortcut_psd import edits as edits_mod

    for name, spec in config["edits"].items():
        params = _kind_params(spec)
        _check_params(f"edits.{name}", spec["kind"], params, edits_mod.edit_defaults(spec["kind"]))
        try:
            edits_mod.check_edit_params(spec["kind"], params)
        except ConfigError as exc:
            raise ConfigError(f"config key 'edits.{name}': {exc}") from exc


def check_artifacts(config: dict) -> None:
    """Each artifact has a free name and takes only its kind's parameters, within their ranges; a retired
    parameter names what replaced it."""
    from shortcut_psd import artifacts as artifacts_mod

    for name, spec in config["artifacts"].items():
        key = f"artifacts.{name}"
        if name == CLEAN:
            raise ConfigError(
                f"config key '{key}': the artifact name '{CLEAN}' is reserved for the clean (p = 0) models; "
                "rename it"
            )
        params = _kind_params(spec)
        try:  # a parameter the kind no longer takes: name what replaced it
            artifacts_mod.check_retired_params(spec["kind"], params)
        except ConfigError as exc:
            raise ConfigError(f"config key '{key}': {exc}") from exc
        _check_params(key, spec["kind"], params, artifacts_mod.artifact_defaults(spec["kind"]))
        try:
            artifacts_mod.check_artifact_params(spec["kind"], params)
        except ConfigError as exc:
            raise ConfigError(f"config key '{key}': {exc}") from exc
