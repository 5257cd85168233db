"""A cache of passed model-fit checks, so that a rerun's config check need not import torch or timm.

Every ``snakemake`` call parses the Snakefile, which checks the config; the model-fit check builds each
architecture and forwards zeros through it (:mod:`shortcut_psd.config.model_fit`), which costs seconds of
imports alone. A check that passed is recorded under the key (torch version, timm version, architecture
name, input channels, kwargs as JSON, image size); the versions are read from the installed packages'
metadata, so no import is needed to look a check up.

Where: ``$SHORTCUT_PSD_CACHE`` if set, else ``$XDG_CACHE_HOME/shortcut-psd``, else
``~/.cache/shortcut-psd``; one JSON file, :data:`CACHE_NAME`, written atomically. Delete it to force every
check to run again. Only successes are stored (a failing check runs, and fails, every time), and a cache
that cannot be read or written is ignored: it never causes or hides an error.

Which architectures a config's inits build needs no cache: :func:`shortcut_psd.model_records.init_arch`
works it out without importing torch or timm.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

CACHE_NAME = "model-fits.json"
FORMAT = 2  # 1 also held the list of each config's architectures (now worked out torch-free)
#: entries kept per table (the newest); the rest are dropped when the file is written
MAX_ENTRIES = 2000

Ident = tuple[str, int, str]  # architecture name, input channels, kwargs as sorted JSON


def cache_dir() -> Path:
    """``$SHORTCUT_PSD_CACHE``, else ``$XDG_CACHE_HOME/shortcut-psd``, else ``~/.cache/shortcut-psd``."""
    own = os.environ.get("SHORTCUT_PSD_CACHE")
    if own:
        return Path(own).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():  # the XDG spec: a relative path is to be ignored
        return Path(xdg) / "shortcut-psd"
    return Path.home() / ".cache" / "shortcut-psd"


def kwargs_json(kwargs: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(kwargs or {}), sort_keys=True, default=str)


def versions() -> tuple[str, str] | None:
    """(torch, timm) versions from the installed packages' metadata (neither is imported); None if
    either is missing, and then nothing is cached."""
    try:
        return metadata.version("torch"), metadata.version("timm")
    except Exception:  # noqa: BLE001 - no metadata: no cache, the checks run
        return None


class FitCache:
    """The passed checks of one cache file: ``fits`` (key -> true). Reading never raises; :meth:`save`
    merges with the file and never raises."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else cache_dir() / CACHE_NAME
        self.versions = versions()
        self.fits = self._read()
        self._new_fits: dict[str, bool] = {}

    def _read(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.path.read_text())
            fits = doc["fits"]
            if doc.get("format") != FORMAT or not isinstance(fits, dict):
                return {}
            return fits
        except Exception:  # noqa: BLE001 - missing, unreadable or corrupt: start empty
            return {}

    def fit_key(self, ident: Ident, size: int) -> str | None:
        if self.versions is None:
            return None
        return json.dumps([*self.versions, ident[0], int(ident[1]), ident[2], int(size)])

    def passed(self, ident: Ident, size: int) -> bool:
        key = self.fit_key(ident, size)
        return key is not None and self.fits.get(key) is True

    def all_passed(self, idents: Iterable[Ident] | None, size: int) -> bool:
        return idents is not None and all(self.passed(i, size) for i in idents)

    def add_fit(self, ident: Ident, size: int) -> None:
        key = self.fit_key(ident, size)
        if key is not None:
            self.fits[key] = self._new_fits[key] = True

    def save(self) -> None:
        """Merge the new entries into the file (re-read, so concurrent runs lose little) and write it
        atomically; any failure is ignored."""
        if not self._new_fits:
            return
        with contextlib.suppress(Exception):
            from shortcut_psd.io import write_text

            fits = self._read()
            for key, value in self._new_fits.items():  # newest last
                fits.pop(key, None)
                fits[key] = value
            doc = {"format": FORMAT, "fits": _newest(fits)}
            write_text(self.path, json.dumps(doc, indent=1, sort_keys=False) + "\n")
            self._new_fits = {}


def _newest(table: dict[str, Any]) -> dict[str, Any]:
    items = list(table.items())[-MAX_ENTRIES:]
    return dict(items)
