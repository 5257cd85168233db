"""What a user data format is made of, and the checks every format shares (the registry of formats itself,
with each format's loader, is :mod:`shortcut_psd.data.formats`).

A :class:`Format` has a name, the kind of path it reads (``file`` or ``folder``), its options (an
:class:`Option` each: name, kind, default, choices) and a loader ``loader(path, options, read) -> Loaded``:
``options`` are the data set's options with defaults filled in and checked, ``read`` (:class:`Read`) says
how to turn images into arrays, and :class:`Loaded` carries the images, label indices, class names, the
splits the data give (``None`` where none) and the groups (patients) that must never cross splits.

Options are given under a data set's ``params`` in the config, except ``top_level`` ones, which sit beside
``path`` (``allow_outside``: a safety switch the config shows on its own). :func:`check_config` checks a
config's data set entry (raising :class:`~shortcut_psd.errors.ConfigError` naming the key);
:func:`resolve_options` checks a loader's spec (raising :class:`~shortcut_psd.errors.DataError`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shortcut_psd.data.image_io import FITS, INTENSITIES, read_images
from shortcut_psd.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: the kinds of path a format can read
PATH_KINDS = ("file", "folder")
#: keys of a loader's spec that are not options: what to read, and the data set's name
SPEC_KEYS = ("format", "path", "name")
#: roles a CSV manifest's ``columns`` option can rename
COLUMN_ROLES = ("path", "label", "split", "group")


@dataclass(frozen=True)
class Option:
    """One option of a format. ``kind``: ``str``, ``bool``, ``choice`` (one of ``choices``), ``names``
    (a list of distinct class names, strings or integers) or ``columns`` (a mapping of
    :data:`COLUMN_ROLES` to column names). A ``None`` default means the option may be left unset."""

    name: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    top_level: bool = False

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not valid for this option, or ``None`` if it is."""
        if value is None and self.default is None:
            return None
        if self.kind == "choice":
            ok = isinstance(value, str) and value in self.choices
            return None if ok else f"must be {_either(self.choices)}; got {value!r}"
        if self.kind == "str":
            return None if isinstance(value, str) else f"must be a text; got {value!r}"
        if self.kind == "bool":
            return None if isinstance(value, bool) else f"must be true or false; got {value!r}"
        if self.kind == "names":
            if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, (str, int)) and not isinstance(v, bool) for v in value
            ):
                return f"must be a list of class names; got {value!r}"
            names = [str(v) for v in value]
            doubles = sorted({n for n in names if names.count(n) > 1})
            return f"names classes {doubles} more than once" if doubles else None
        if self.kind == "columns":
            if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
                return f"must map {', '.join(COLUMN_ROLES)} to column names; got {value!r}"
            unknown = sorted(set(value) - set(COLUMN_ROLES))
            return f"{unknown} are not column roles; use {', '.join(COLUMN_ROLES)}" if unknown else None
        raise ValueError(f"option {self.name}: unknown kind {self.kind!r}")


def _either(choices: Sequence[str]) -> str:
    quoted = [repr(c) for c in choices]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


#: options every format takes
COMMON_OPTIONS = (
    Option("classes", "names", None, "class names in label order (binary: index 1 is positive)"),
    Option("fit", "choice", "stretch", "stretch to square, or crop the centre square first", FITS),
    Option(
        "intensity",
        "choice",
        "dtype",
        "map to [0, 1] by dtype, per-image min-max or percentiles",
        INTENSITIES,
    ),
    Option("licence", "str", "unknown (user data)", "licence shown on the data card"),
    Option("description", "str", None, "description shown on the data card"),
)


@dataclass(frozen=True)
class Read:
    """How a loader turns images into arrays, and the data set's name for messages (``where``)."""

    image_size: int
    channels: int
    fit: str
    intensity: str
    where: str


@dataclass
class Loaded:
    """What a loader returns: images ``(N, channels, S, S)`` float32 in [0, 1], label indices into
    ``classes``, the split of each image where the data give one (else ``None``) and its group."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    splits: list[str | None]
    groups: list[str]


@dataclass(frozen=True)
class Format:
    """A user data format: name, kind of path (:data:`PATH_KINDS`), what that path is (for messages),
    its loader, one-line summary and options."""

    name: str
    path_kind: str
    path_help: str
    loader: Callable[[Path, dict[str, Any], Read], Loaded]
    summary: str
    options: tuple[Option, ...] = field(default=COMMON_OPTIONS)

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if o.name == name), None)

    @property
    def params(self) -> tuple[str, ...]:
        """Options given under ``params`` in the config, in order."""
        return tuple(o.name for o in self.options if not o.top_level)

    def defaults(self) -> dict[str, Any]:
        return {o.name: o.default for o in self.options}


# ------------------------------------------------------------------------------------------------
# Checks: a loader's spec (DataError) and a config's data set entry (ConfigError)
# ------------------------------------------------------------------------------------------------


def resolve_options(form: Format, spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The format's options from a loader's spec, defaults filled in; a bad value raises DataError."""
    unknown = sorted(set(spec) - set(SPEC_KEYS) - {o.name for o in form.options})
    if unknown:
        raise DataError(f"{where}: unknown keys {unknown} for format {form.name!r}")
    options = form.defaults()
    for option in form.options:
        if option.name in spec:
            problem = option.problem(spec[option.name])
            if problem:
                raise DataError(f"{where}: {option.name} {problem}")
            options[option.name] = spec[option.name]
    return options


def check_options(form: Format, options: Mapping[str, Any], key: str) -> None:
    """Check the options under a data set's ``params`` (config key ``key``); raise ConfigError."""
    allowed = form.params
    extra = sorted(set(options) - set(allowed))
    if extra:
        beside = [n for n in extra if (o := form.option(n)) is not None and o.top_level]
        hint = f" ({', '.join(beside)} goes beside 'path', not under 'params')" if beside else ""
        raise ConfigError(
            f"config key '{key}': {extra} are not options of format '{form.name}'. "
            f"Allowed: {', '.join(allowed)}{hint}"
        )
    for name, value in options.items():
        problem = form.option(name).problem(value)
        if problem:
            raise ConfigError(f"config key '{key}.{name}': {problem}")


def check_config(form: Format, entry: Mapping[str, Any], key: str, workdir: str | os.PathLike) -> None:
    """Check a config's data set entry of format ``form`` (config key ``key``): its path is given, exists
    and is the right kind, its ``params`` and top-level options are the format's; raise ConfigError."""
    if "path" not in entry:
        raise ConfigError(
            f"config key '{key}.path' is required for format '{form.name}': give the {form.path_help}"
        )
    workdir = Path(workdir)
    path = workdir / entry["path"]
    if not path.exists():
        raise ConfigError(
            f"config key '{key}.path': {entry['path']} does not exist (relative to {workdir.resolve()}); "
            "fix the path or prepare the data first"
        )
    check_options(form, entry.get("params") or {}, f"{key}.params")
    for option in form.options:
        if option.top_level and option.name in entry:
            problem = option.problem(entry[option.name])
            if problem:
                raise ConfigError(f"config key '{key}.{option.name}': {problem}")
    if (form.path_kind == "folder") != path.is_dir():
        raise ConfigError(
            f"config key '{key}.path': {entry['path']} must be a {form.path_kind} for format '{form.name}'"
        )


def spec_from_config(form: Format, entry: Mapping[str, Any]) -> dict[str, Any]:
    """A config's data set entry -> the spec a loader reads: ``format``, ``path``, the ``params`` and the
    format's top-level options (split fractions are the loader's arguments, not part of the spec)."""
    spec = {"format": form.name, "path": entry["path"], **(entry.get("params") or {})}
    for option in form.options:
        if option.top_level and option.name in entry:
            spec[option.name] = entry[option.name]
    return spec


# ------------------------------------------------------------------------------------------------
# Shared by loaders of image files
# ------------------------------------------------------------------------------------------------


def natural_key(label: str) -> tuple:
    """Sort numeric labels numerically (2 before 10), others alphabetically."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def class_order(found: Iterable[str], classes: Sequence[Any] | None, where: str) -> list[str]:
    """The class names in label order: ``classes`` (the option) if given, else the sorted labels found."""
    found = sorted({str(c) for c in found}, key=natural_key)
    if classes is None:
        return found
    listed = [str(c) for c in classes]
    unknown = sorted(set(found) - set(listed))
    if unknown:
        raise DataError(f"{where}: labels {unknown} are not in the classes listed in the config ({listed})")
    return listed


def load_files(
    paths: list[Path],
    label_names: list[str],
    splits: list[str | None],
    groups: list[str],
    options: Mapping[str, Any],
    read: Read,
) -> Loaded:
    """Read the image files a format listed (with their labels, given splits and groups) into Loaded."""
    classes = class_order(label_names, options["classes"], read.where)
    index = {c: k for k, c in enumerate(classes)}
    labels = np.array([index[v] for v in label_names], dtype=np.int64)
    if len(set(label_names)) < 2:
        raise DataError(
            f"{read.where}: only one class ({label_names[0]}) has images; a classifier needs at least two"
        )
    log.info("%s: reading %d images of %d classes", read.where, len(paths), len(classes))
    images = read_images(
        paths, image_size=read.image_size, channels=read.channels, fit=read.fit, intensity=read.intensity
    )
    return Loaded(images, labels, classes, splits, groups)
