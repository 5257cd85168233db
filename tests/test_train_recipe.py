"""Training recipe defaults live in the config schema only: ``train.DEFAULT_RECIPE`` and ``train.CHOICES``
are read from its ``definitions.recipe``, which the config's ``pretrain`` and ``finetune`` sections share."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
from conftest import REPO

from shortcut_psd import train, train_recipe
from shortcut_psd.config import SCHEMA_PATH, load_schema, load_yaml, validate
from shortcut_psd.errors import ConfigError
from shortcut_psd.study import split_recipe


def test_recipe_module_reads_the_one_schema_file():
    assert train_recipe.SCHEMA_PATH.resolve() == SCHEMA_PATH.resolve()
    assert train.DEFAULT_RECIPE is train_recipe.DEFAULT_RECIPE and train.CHOICES is train_recipe.CHOICES
    assert train.resolve_recipe is train_recipe.resolve_recipe


def test_defaults_and_choices_are_the_schemas():
    recipe = load_schema()["definitions"]["recipe"]["properties"]
    assert all("default" in spec for spec in recipe.values()), "every recipe key needs a schema default"
    assert train.DEFAULT_RECIPE == {k: v["default"] for k, v in recipe.items() if k != "max_train_images"}
    assert list(train.DEFAULT_RECIPE) == [k for k in recipe if k != "max_train_images"]
    assert train.CHOICES == {k: tuple(v["enum"]) for k, v in recipe.items() if "enum" in v}
    assert set(train.CHOICES) == {"optimizer", "schedule", "augment"}
    for key, value in train.DEFAULT_RECIPE.items():  # same types as the schema allows (2e-3 vs 0.002 alike)
        assert (
            type(value)
            is {"integer": int, "number": float, "string": str, "boolean": bool}[recipe[key]["type"]]
        ), key


def test_pretrain_and_finetune_get_the_same_defaults_and_resolve_to_them():
    """What the workflow passes: the validated config's section, less the study's keys (split_recipe)."""
    schema = load_schema()
    for section in ("pretrain", "finetune"):
        assert schema["properties"][section]["$ref"] == "#/definitions/recipe"
    config = load_yaml(REPO / "config.yaml")
    config.pop("pretrain"), config.pop("finetune")
    validate(config)
    for section in ("pretrain", "finetune"):
        passed, own = split_recipe(config[section])
        assert own == {"max_train_images": 0}
        assert passed == train.DEFAULT_RECIPE
        assert train.resolve_recipe(passed) == train.DEFAULT_RECIPE == train.resolve_recipe(None)


def test_config_sections_override_the_defaults_key_by_key():
    config = load_yaml(REPO / "config.yaml")
    given = copy.deepcopy(config["finetune"])
    validate(config)
    passed, _ = split_recipe(config["finetune"])
    resolved = train.resolve_recipe(passed)
    for key, value in resolved.items():
        assert value == given.get(key, train.DEFAULT_RECIPE[key]), key


def test_default_recipe_is_not_shared_state():
    r = train.resolve_recipe({"epochs": 2})
    r["epochs"] = 99
    assert (
        train.DEFAULT_RECIPE["epochs"]
        == load_schema()["definitions"]["recipe"]["properties"]["epochs"]["default"]
    )


@pytest.mark.parametrize(
    "recipe, match",
    [
        ({"optimizer": "adam"}, "recipe optimizer 'adam' is not one of adamw, sgd"),
        ({"schedule": "step"}, "recipe schedule 'step' is not one of cosine, constant"),
        ({"max_train_images": 5}, "applied by shortcut_psd.study"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"patience": -1}, "patience must be >= 0"),
        # the schema's bound (0.5), the one place: the loop once allowed up to 1 on its own
        ({"label_smoothing": 0.7}, r"label_smoothing must be <= 0.5; got 0.7"),
        ({"momentum": 1.5}, r"momentum must be <= 1"),
    ],
)
def test_bad_recipes_are_refused(recipe, match):
    """Every bound comes from the schema (train_recipe.BOUNDS), so the config check and the loop agree."""
    with pytest.raises(ConfigError, match=match):
        train.resolve_recipe(recipe)


def test_importing_train_does_not_import_the_config_package():
    """The defaults come from the YAML file itself: shortcut_psd.config costs ~0.2 s of start-up."""
    code = "import sys, shortcut_psd.train; print('shortcut_psd.config' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, text=True, capture_output=True, timeout=120
    )
    assert out.stdout.strip() == "False", out.stdout
