"""One registry mechanism for named image transforms (source edits, artifacts), like timm's model registry.

A :class:`Registry` maps a name to a function ``fn(images, ..., **params)``. Each function is registered
with a :class:`Param` spec for every keyword-only parameter (type, bounds with open or closed ends, a
one-line doc; the default is the one in the function's signature, so it is written once), optional checks
across parameters, parameters it no longer takes (each with what replaced it), a *spectral signature*
(where the transform puts its power) and the registry's extra attributes (for artifacts ``clean_is_raw``).
From these the registry validates a config's parameters, lists the defaults and writes the description
that ``shortcut-psd kinds --describe`` prints. Adding a kind is one decorated function; the config
schema's ``kind`` enums are tested equal to the registries' names (tests/test_registry.py).

Numpy-only, so that importing the edits or artifacts does not import torch.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shortcut_psd.errors import ConfigError

TYPES = ("int", "float", "str", "bool", "choice")
_NO_DEFAULT = object()


def _fmt(x: float) -> str:
    return f"{x:.3g}"


@dataclass(frozen=True)
class Param:
    """Spec of one parameter: ``type`` (one of :data:`TYPES`), bounds ``lo``/``hi`` (None: unbounded) with
    open or closed ends, ``choices`` (type ``choice``), ``nullable`` (None allowed), ``unit`` and a one-line
    ``doc``. ``default`` is filled in from the function's signature at registration."""

    type: str
    doc: str = ""
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple[Any, ...] = ()
    nullable: bool = False
    unit: str = ""
    default: Any = _NO_DEFAULT

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"Param type {self.type!r} is not one of {list(TYPES)}")
        if (self.type == "choice") != bool(self.choices):
            raise ValueError("a Param has choices if and only if its type is 'choice'")
        if (self.lo is not None or self.hi is not None) and self.type not in ("int", "float"):
            raise ValueError(f"bounds need type int or float, not {self.type!r}")

    @property
    def bounded(self) -> bool:
        return self.lo is not None or self.hi is not None

    def range_words(self) -> str:
        """The bounds as ``" > 0 and <= 0.5"`` (as error messages say them); '' when unbounded."""
        parts = []
        if self.lo is not None:
            parts.append(f"{'>' if self.lo_open else '>='} {_fmt(self.lo)}")
        if self.hi is not None:
            parts.append(f"{'<' if self.hi_open else '<='} {_fmt(self.hi)}")
        return (" " + " and ".join(parts)) if parts else ""

    def summary(self) -> str:
        """``float in (0, 0.5] cycles/pixel``, ``int >= 1 or null``, ``one of ['a', 'b']``, ``true | false``."""
        if self.type == "choice":
            text = f"one of {list(self.choices)}"
        elif self.type == "bool":
            text = "true | false"
        else:
            text = self.type
            if self.lo is not None and self.hi is not None:
                text += f" in {'(' if self.lo_open else '['}{_fmt(self.lo)}, {_fmt(self.hi)}"
                text += ")" if self.hi_open else "]"
            else:
                text += self.range_words()
        text += f" {self.unit}" if self.unit else ""
        return text + (" or null" if self.nullable else "")

    def error(self, kind: str, name: str, value: Any) -> str | None:
        """The error message for ``value`` (naming ``kind`` and ``name``), or None if it is valid."""
        if value is None and self.nullable:
            return None
        null = " or null" if self.nullable else ""
        if self.type == "choice":
            ok = any(isinstance(value, type(c)) and value == c for c in self.choices)
            return None if ok else f"{kind}: {name}={value!r} is not one of {list(self.choices)}{null}"
        if self.type == "bool":
            ok = isinstance(value, (bool, np.bool_))
            return None if ok else f"{kind}: {name} must be true or false{null}; got {value!r}"
        if self.type == "str":
            return None if isinstance(value, str) else f"{kind}: {name} must be a string{null}; got {value!r}"
        whole = self.type == "int"
        types = (int, np.integer) if whole else (int, float, np.integer, np.floating)
        ok = isinstance(value, types) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)
        if ok and self.lo is not None:
            ok = value > self.lo if self.lo_open else value >= self.lo
        if ok and self.hi is not None:
            ok = value < self.hi if self.hi_open else value <= self.hi
        if ok:
            return None
        what = "an integer" if whole else "a number"
        unit = f" {self.unit}" if self.unit and self.bounded else ""
        return f"{kind}: {name} must be {what}{self.range_words()}{unit}{null}; got {value!r}"


#: a check across parameters: the merged parameters -> an error message (without the kind), or None
Check = Callable[[dict[str, Any]], str | None]


@dataclass(frozen=True)
class Entry:
    """One registered kind: its function, parameter specs (defaults filled in) and attributes."""

    name: str
    fn: Callable[..., Any]
    params: dict[str, Param]
    signature: str
    checks: tuple[Check, ...] = ()
    retired: dict[str, str] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def defaults(self) -> dict[str, Any]:
        return {n: p.default for n, p in self.params.items()}


class Registry(Mapping[str, Callable[..., Any]]):
    """Name -> function, with each function's parameter specs and attributes (see the module docstring).

    ``what`` names the things in messages ("edit", "artifact"); ``extras`` gives the registry's extra
    attributes and their defaults (``register`` accepts exactly these as keywords).
    """

    def __init__(self, what: str, *, extras: Mapping[str, Any] | None = None) -> None:
        self.what = what
        self.extra_defaults = dict(extras or {})
        self._entries: dict[str, Entry] = {}

    # -- Mapping: name -> function ------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Callable[..., Any]:
        return self._entries[name].fn

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    # -- registration ---------------------------------------------------------------------------------------
    def register(
        self,
        name: str,
        *,
        signature: str,
        params: Mapping[str, Param] | None = None,
        checks: Sequence[Check] = (),
        retired: Mapping[str, str] | None = None,
        **extras: Any,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: register ``fn`` as ``name``; every keyword-only parameter of ``fn`` needs a spec in
        ``params`` and a default (which must pass its spec). Mistakes raise TypeError at import time."""
        unknown = sorted(set(extras) - set(self.extra_defaults))
        if unknown:
            raise TypeError(
                f"{self.what} {name!r}: unknown attribute(s) {unknown}; known: {self.extra_defaults}"
            )
        specs = dict(params or {})

        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries:
                raise TypeError(f"{self.what} {name!r} is registered twice")
            sig = inspect.signature(fn).parameters
            kw = {n: p for n, p in sig.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
            if set(kw) != set(specs):
                raise TypeError(
                    f"{self.what} {name!r}: keyword-only parameters {sorted(kw)} and specs {sorted(specs)} differ"
                )
            filled = {}
            for n, p in kw.items():  # signature order
                if p.default is inspect.Parameter.empty:
                    raise TypeError(f"{self.what} {name!r}: parameter {n!r} needs a default")
                if specs[n].default is not _NO_DEFAULT:
                    raise TypeError(f"{self.what} {name!r}: give {n!r}'s default in the signature only")
                spec = dataclasses.replace(specs[n], default=p.default)
                if (msg := spec.error(name, n, p.default)) is not None:
                    raise TypeError(f"default of {n!r} fails its spec: {msg}")
                filled[n] = spec
            self._entries[name] = Entry(
                name,
                fn,
                filled,
                signature,
                tuple(checks),
                dict(retired or {}),
                {**self.extra_defaults, **extras},
            )
            return fn

        return deco

    # -- queries ------------------------------------------------------------------------------------------
    def kinds(self) -> list[str]:
        return sorted(self._entries)

    def entry(self, kind: str) -> Entry:
        """The entry of ``kind``; ConfigError naming the known kinds for an unknown one."""
        if kind not in self._entries:
            raise ConfigError(f"unknown {self.what} {kind!r}; choose one of {self.kinds()}")
        return self._entries[kind]

    def defaults(self, kind: str) -> dict[str, Any]:
        """Parameter names of ``kind`` with their defaults, in signature order."""
        return self.entry(kind).defaults

    def attribute(self, name: str) -> Mapping[str, Any]:
        """A live read-only view kind -> the entry's extra attribute ``name`` (or ``retired``)."""
        return _AttributeView(self, name)

    def check_retired(self, kind: str, params: Mapping[str, Any]) -> None:
        """ConfigError naming each parameter of ``params`` that ``kind`` no longer takes (unknown kinds pass)."""
        retired = self._entries[kind].retired if kind in self._entries else {}
        old = [k for k in params if k in retired]
        if old:
            raise ConfigError(
                f"{kind}: parameter(s) {old} were removed; " + "; ".join(f"'{k}': {retired[k]}" for k in old)
            )

    def merge(self, kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults of ``kind`` updated by ``params``; ConfigError naming the allowed names for unknown ones."""
        defaults = self.defaults(kind)
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            allowed = sorted(defaults) or "none"
            raise ConfigError(f"{self.what} {kind!r} has no parameter(s) {unknown}; allowed: {allowed}")
        return {**defaults, **params}

    def check(self, kind: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Validate ``params`` for ``kind`` (retired names, unknown names, each value against its spec,
        then the checks across parameters); return them merged with the defaults."""
        params = dict(params or {})
        self.check_retired(kind, params)
        merged = self.merge(kind, params)
        entry = self._entries[kind]
        for name, spec in entry.params.items():
            if (msg := spec.error(kind, name, merged[name])) is not None:
                raise ConfigError(msg)
        for check in entry.checks:
            if (msg := check(merged)) is not None:
                raise ConfigError(f"{kind}: {msg}")
        return merged

    def describe(self, kind: str) -> str:
        """The function's docstring, then its parameters (from the specs) and its spectral signature."""
        entry = self.entry(kind)
        lines = [
            inspect.cleandoc(entry.fn.__doc__ or ""),
            "",
            "Parameters:" + ("" if entry.params else " none"),
        ]
        for n, p in entry.params.items():
            default = "null" if p.default is None else repr(p.default)
            lines.append(f"  {n} ({p.summary()}; default {default})" + (f": {p.doc}" if p.doc else ""))
        if entry.retired:
            lines.append(f"  (no longer taken: {', '.join(entry.retired)})")
        lines.append(f"Spectral signature: {entry.signature}")
        return "\n".join(lines)


class _AttributeView(Mapping[str, Any]):
    def __init__(self, registry: Registry, name: str) -> None:
        self._registry, self._name = registry, name

    def __getitem__(self, kind: str) -> Any:
        entry = self._registry._entries[kind]
        return entry.retired if self._name == "retired" else entry.extras[self._name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry)

    def __len__(self) -> int:
        return len(self._registry)

    def __repr__(self) -> str:
        return repr(dict(self))
