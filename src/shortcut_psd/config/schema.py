"""Schema validation with defaults filled in, and messages that name the dotted key and what is allowed.

The schema is ``config.schema.yaml`` next to this module: package data, so that an installed wheel
validates configs (``workflow/schemas/config.schema.yaml`` in the source tree is a link to it).
"""

from __future__ import annotations

import copy
import difflib
import functools
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from shortcut_psd.errors import ConfigError

#: the one copy of the schema (package data)
SCHEMA_PATH = Path(__file__).parent / "config.schema.yaml"


def _extend_with_default(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, subschema in properties.items():
                if "default" in subschema and prop not in instance:
                    instance[prop] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_DefaultFillingValidator = _extend_with_default(jsonschema.Draft7Validator)


@functools.lru_cache(maxsize=4)
def _parsed_schema(path: str, mtime_ns: int) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def registered_choices() -> dict[tuple[str, ...], list[str]]:
    """The schema's enums that the library's registries own: a new edit, artifact, data format, built-in,
    weight layout or spectrum recipe is registered in its module and the schema takes it from there (the
    YAML file leaves these enums out and says so in their descriptions)."""
    from shortcut_psd.artifacts import artifact_kinds
    from shortcut_psd.data.builtin import BUILTINS
    from shortcut_psd.data.formats import FORMATS
    from shortcut_psd.dynamics_recipes import RECIPES
    from shortcut_psd.edits import edit_kinds
    from shortcut_psd.weights import LAYOUTS

    item = ("additionalProperties", "properties")
    return {
        ("datasets", *item, "format"): ["builtin", *FORMATS],
        ("datasets", *item, "builtin"): list(BUILTINS),
        ("edits", *item, "kind"): list(edit_kinds()),
        ("artifacts", *item, "kind"): list(artifact_kinds()),
        ("inits", *item, "layout"): list(LAYOUTS),
        ("psd", "properties", "recipe"): list(RECIPES),
    }


def load_schema() -> dict:
    """The schema as a dict, with the registries' enums filled in (:func:`registered_choices`); a fresh copy
    each call, the file parsed once per version."""
    schema = copy.deepcopy(_parsed_schema(str(SCHEMA_PATH), SCHEMA_PATH.stat().st_mtime_ns))
    for path, choices in registered_choices().items():
        node = schema["properties"]
        for key in path[:-1]:
            node = node[key]
        node[path[-1]]["enum"] = choices
    return schema


def _dotted(path: Iterable[Any]) -> str:
    parts = [str(p) for p in path]
    return ".".join(parts) if parts else "(top level)"


def _subschema_at(schema: dict, error: jsonschema.ValidationError) -> dict:
    return error.schema if isinstance(error.schema, dict) else {}


def _format_enum(error: jsonschema.ValidationError, key: str, hint: str) -> str:
    allowed = ", ".join(map(str, error.validator_value))
    close = difflib.get_close_matches(str(error.instance), [str(v) for v in error.validator_value], n=1)
    did = f"; did you mean '{close[0]}'?" if close else ""
    return f"config key '{key}': {error.instance!r} is not allowed{hint}. Allowed values: {allowed}{did}"


def _format_additional(error: jsonschema.ValidationError, key: str, sub: dict) -> str:
    allowed = sorted(sub.get("properties", {}))
    extra = [k for k in error.instance if k not in sub.get("properties", {})]
    close = {k: difflib.get_close_matches(k, allowed, n=1) for k in extra}
    sugg = "; ".join(f"'{k}' -> did you mean '{c[0]}'?" for k, c in close.items() if c)
    where = f"under '{key}'" if error.absolute_path else "at the top level"
    return f"unknown config key(s) {extra} {where}. Allowed keys: {', '.join(allowed)}" + (
        f" ({sugg})" if sugg else ""
    )


def _format_required(error: jsonschema.ValidationError, key: str, sub: dict) -> str:
    prefix = f"{key}." if error.absolute_path else ""
    said = re.match(r"^'(.+)' is a required property", error.message)  # one error per missing key
    missing = [said.group(1)] if said else [r for r in error.validator_value if r not in error.instance]
    name = f"{prefix}{missing[0]}" if missing else key
    what = (sub.get("properties", {}).get(missing[0], {}).get("description") if missing else None) or ""
    return (
        f"config key '{name}' is required but missing"
        + (f" ({what})" if what else "")
        + (f"; '{key}' is {sub.get('description')}" if error.absolute_path and sub.get("description") else "")
        + ". Add it (see config.yaml for an example)"
    )


def _format_error(error: jsonschema.ValidationError) -> str:
    key = _dotted(error.absolute_path)
    sub = _subschema_at(load_schema(), error)
    what = sub.get("description")
    hint = f" ({what})" if what else ""
    if error.validator == "enum":
        return _format_enum(error, key, hint)
    if error.validator == "additionalProperties":
        return _format_additional(error, key, sub)
    if error.validator == "type":
        return (
            f"config key '{key}': {error.instance!r} has type {type(error.instance).__name__}, "
            f"expected {error.validator_value}{hint}"
        )
    if error.validator == "required":
        return _format_required(error, key, sub)
    if error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"config key '{key}': {error.message}{hint}"
    if error.validator == "minItems":
        return f"config key '{key}' must not be empty: {error.message}{hint}"
    if error.validator == "pattern" or (error.validator == "propertyNames"):
        return (
            f"config key '{key}': {error.message}. Names used in file paths may hold only letters, "
            "digits, '_' and '-'"
        )
    return f"config key '{key}': {error.message}{hint}"


def validate(config: dict) -> dict:
    """Validate ``config`` in place against the schema, filling defaults; raise ConfigError on the first problem."""
    validator = _DefaultFillingValidator(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(list(e.absolute_path)), str(e.path)))
    if errors:
        msgs = [_format_error(e) for e in errors[:5]]
        more = f"\n  ... and {len(errors) - 5} more" if len(errors) > 5 else ""
        raise ConfigError("invalid config:\n  " + "\n  ".join(msgs) + more)
    return config
