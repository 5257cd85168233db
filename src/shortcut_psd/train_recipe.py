"""Training recipes: their defaults and allowed values, read from the config schema, and the checks of a
recipe given to :func:`shortcut_psd.train.train_classifier` (the names are importable from there too).

Recipe keys (defaults in the schema's ``definitions.recipe``, which the config's ``pretrain`` and
``finetune`` sections share; here :data:`DEFAULT_RECIPE`):

- ``epochs``, ``batch_size``, ``lr``;
- ``optimizer``: ``adamw`` or ``sgd`` (``momentum`` used by sgd, Nesterov off), ``weight_decay``;
- ``schedule``: ``cosine`` (to 0 at the last step) or ``constant``, after ``warmup_epochs`` of linear
  warm-up (per step);
- ``augment``: ``none``, ``flip`` (random horizontal flip) or ``flip_crop`` (flip plus a random crop
  from a reflect-padded image, padding = size / 8);
- ``patience``: epochs without a lower validation loss before stopping (0 = never stop early);
- ``label_smoothing`` of the training loss;
- ``amp``: bf16 autocast (CUDA only; ignored on CPU); ``channels_last`` memory format.

The config's recipes also hold ``max_train_images``; it is not a key here: :mod:`shortcut_psd.study`
applies it (one seeded, class-stratified subsample, before the shortcut protocol when fine-tuning) and
passes the rest, and :func:`resolve_recipe` refuses it so that no second subsample can happen here.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from shortcut_psd.errors import ConfigError

#: the package's config schema, ``shortcut_psd.config.SCHEMA_PATH`` (tested equal): importing that package
#: here would add about 0.2 s to the start-up of every job that trains
SCHEMA_PATH = Path(__file__).parent / "config" / "config.schema.yaml"
#: recipe keys applied by :mod:`shortcut_psd.study` before training
STUDY_KEYS = ("max_train_images",)


def schema_recipe_properties() -> dict[str, dict[str, Any]]:
    """The schema's ``definitions.recipe.properties``: every recipe key with its type, default and enum."""
    text = SCHEMA_PATH.read_text(encoding="utf-8")
    try:
        schema = yaml.load(text, Loader=yaml.CSafeLoader)  # libyaml: 10 ms, a fifth of the pure-Python loader
    except AttributeError:  # PyYAML built without libyaml
        schema = yaml.safe_load(text)
    return schema["definitions"]["recipe"]["properties"]


_PROPERTIES = schema_recipe_properties()
if _no_default := [k for k, p in _PROPERTIES.items() if "default" not in p]:
    raise ConfigError(f"{SCHEMA_PATH}: recipe keys {', '.join(_no_default)} have no default")

#: the schema's recipe defaults, less :data:`STUDY_KEYS`
DEFAULT_RECIPE: dict[str, Any] = {k: p["default"] for k, p in _PROPERTIES.items() if k not in STUDY_KEYS}
#: the schema's allowed values of the recipe keys that have a list of them
CHOICES: dict[str, tuple[Any, ...]] = {k: tuple(p["enum"]) for k, p in _PROPERTIES.items() if "enum" in p}
#: the schema's numeric bounds: key -> [(JSON-schema keyword, bound)], e.g. epochs -> [("minimum", 1)]
_COMPARE = {
    "minimum": (">=", lambda v, b: v >= b),
    "exclusiveMinimum": (">", lambda v, b: v > b),
    "maximum": ("<=", lambda v, b: v <= b),
    "exclusiveMaximum": ("<", lambda v, b: v < b),
}
BOUNDS: dict[str, list[tuple[str, float]]] = {
    k: [(word, p[word]) for word in _COMPARE if word in p]
    for k, p in _PROPERTIES.items()
    if k not in STUDY_KEYS
}


def resolve_recipe(recipe: Mapping[str, Any] | None) -> dict[str, Any]:
    """``DEFAULT_RECIPE`` updated by ``recipe``; unknown keys and bad values raise :class:`ConfigError`."""
    recipe = dict(recipe or {})
    if "max_train_images" in recipe:
        raise ConfigError(
            "recipe key 'max_train_images' is applied by shortcut_psd.study (pretrain_source, protocol_sets) "
            "before training, not by train_classifier: subsample the training images there"
        )
    unknown = sorted(set(recipe) - set(DEFAULT_RECIPE))
    if unknown:
        hints = {k: difflib.get_close_matches(k, DEFAULT_RECIPE, n=1) for k in unknown}
        said = ", ".join(f"'{k}'" + (f" (did you mean '{h[0]}'?)" if h else "") for k, h in hints.items())
        raise ConfigError(f"unknown training recipe keys {said}; known: {', '.join(DEFAULT_RECIPE)}")
    out = {**DEFAULT_RECIPE, **recipe}
    for key, allowed in CHOICES.items():
        if out[key] not in allowed:
            raise ConfigError(f"recipe {key} '{out[key]}' is not one of {', '.join(allowed)}")
    for key, bounds in BOUNDS.items():
        for word, bound in bounds:
            sign, holds = _COMPARE[word]
            if not holds(float(out[key]), bound):
                raise ConfigError(f"recipe {key} must be {sign} {bound}; got {out[key]}")
    return out
