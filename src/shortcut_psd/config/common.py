"""Message helpers shared by the semantic checks of each section."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

from shortcut_psd.errors import ConfigError


def _unknown(kind: str, name: str, known: Iterable[str], key: str) -> ConfigError:
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    did = f" Did you mean '{close[0]}'?" if close else ""
    return ConfigError(
        f"config key '{key}': unknown {kind} '{name}'. Known: {', '.join(known) or '(none)'}.{did}"
    )


def _check_params(key: str, kind: str, params: dict, defaults: dict) -> None:
    extra = sorted(set(params) - set(defaults))
    if extra:
        raise ConfigError(
            f"config key '{key}': parameter(s) {extra} are not taken by kind '{kind}'. "
            f"Allowed: {', '.join(sorted(defaults)) or '(none)'}"
        )


def _under(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False
