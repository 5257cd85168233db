"""The registry of users' data formats: agrees with the config schema, checks config entries naming the key,
and is the one place the loader dispatches through (a format added to it is loaded end to end)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shortcut_psd.config import load_schema
from shortcut_psd.data import formats
from shortcut_psd.data.builtin import BUILTINS
from shortcut_psd.data.format_base import PATH_KINDS, Format, Loaded
from shortcut_psd.data.formats import FORMATS, check_format_config, check_format_options, user_spec
from shortcut_psd.data.user import load_user_dataset
from shortcut_psd.errors import ConfigError, DataError


def _dataset_schema() -> dict:
    return load_schema()["properties"]["datasets"]["additionalProperties"]["properties"]


def test_registry_names_are_the_schema_formats() -> None:
    """The loaded schema takes the formats and built-ins from the registries; the YAML file keeps no copy."""
    import yaml

    from shortcut_psd.config import SCHEMA_PATH

    schema = _dataset_schema()
    assert set(schema["format"]["enum"]) == {"builtin", *FORMATS}
    assert set(schema["builtin"]["enum"]) == set(BUILTINS)
    raw = yaml.safe_load(SCHEMA_PATH.read_text())["properties"]["datasets"]["additionalProperties"][
        "properties"
    ]
    assert "enum" not in raw["format"] and "enum" not in raw["builtin"]


def test_registry_entries_are_complete() -> None:
    for name, form in FORMATS.items():
        assert form.name == name and form.path_kind in PATH_KINDS and callable(form.loader)
        assert form.path_help and form.summary
        names = [o.name for o in form.options]
        assert len(names) == len(set(names)), name
        for option in form.options:
            assert option.problem(option.default) is None, (name, option.name)
            assert option.kind != "choice" or option.default in option.choices
        # every option under params is one the config schema leaves to params; top-level ones are
        # keys of the data set entry in the schema
        for option in form.options:
            if option.top_level:
                assert option.name in _dataset_schema(), option.name


def _folder(root: Path, classes=("neg", "pos"), n: int = 5) -> Path:
    rng = np.random.default_rng(0)
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8)).save(root / cls / f"{i}.png")
    return root


def test_check_format_options_names_the_key() -> None:
    check_format_options(
        "csv", {"classes": ["a", "b"], "fit": "crop", "columns": {"path": "file"}}, "k.params"
    )
    with pytest.raises(ConfigError, match=r"'k\.params': \['resize'\] are not options of format 'npz'"):
        check_format_options("npz", {"resize": "crop"}, "k.params")
    with pytest.raises(ConfigError, match="allow_outside goes beside 'path'"):
        check_format_options("csv", {"allow_outside": True}, "k.params")
    with pytest.raises(ConfigError, match=r"'k\.params\.fit': must be 'stretch' or 'crop'; got 'squash'"):
        check_format_options("imagefolder", {"fit": "squash"}, "k.params")
    with pytest.raises(ConfigError, match=r"'k\.params\.classes'.*more than once"):
        check_format_options("imagefolder", {"classes": ["a", "a"]}, "k.params")
    with pytest.raises(ConfigError, match=r"'k\.params\.columns'.*not column roles"):
        check_format_options("csv", {"columns": {"patient": "id"}}, "k.params")
    with pytest.raises(ConfigError, match="unknown data format 'hdf5'"):
        check_format_options("hdf5", {}, "k.params")


def test_check_format_config_path_kind_and_options(tmp_path: Path) -> None:
    _folder(tmp_path / "imgs")
    (tmp_path / "m.csv").write_text("path,label\n")
    ok = {"format": "imagefolder", "path": "imgs", "params": {"intensity": "minmax"}}
    check_format_config(ok, "datasets.mine", workdir=tmp_path)
    check_format_config({"format": "csv", "path": "m.csv", "allow_outside": False}, "d.m", workdir=tmp_path)
    cases = [
        ({"format": "csv"}, r"'d\.m\.path' is required for format 'csv': give the CSV manifest"),
        ({"format": "npz", "path": "x.npz"}, r"'d\.m\.path': x\.npz does not exist"),
        ({"format": "npz", "path": "imgs"}, r"'d\.m\.path': imgs must be a file for format 'npz'"),
        ({"format": "imagefolder", "path": "m.csv"}, r"'d\.m\.path': m\.csv must be a folder"),
        ({"format": "imagefolder", "path": "imgs", "params": {"x": 1}}, r"'d\.m\.params': \['x'\]"),
        ({"format": "csv", "path": "m.csv", "allow_outside": "yes"}, r"'d\.m\.allow_outside': must be true"),
        ({"format": "dicom", "path": "imgs"}, r"'d\.m\.format': unknown data format"),
    ]
    for entry, message in cases:
        with pytest.raises(ConfigError, match=message):
            check_format_config(entry, "d.m", workdir=tmp_path)


def test_user_spec_from_a_config_entry(tmp_path: Path) -> None:
    entry = {
        "format": "csv",
        "path": "m.csv",
        "allow_outside": True,
        "val_fraction": 0.1,
        "test_fraction": 0.1,
        "params": {"classes": ["a", "b"]},
    }
    assert user_spec(entry) == {
        "format": "csv",
        "path": "m.csv",
        "allow_outside": True,
        "classes": ["a", "b"],
    }
    # allow_outside is not an npz option: a schema default beside path does not reach the loader
    root = _folder(tmp_path / "imgs")
    np.savez(tmp_path / "s.npz", train_images=np.zeros((4, 8, 8), np.uint8), train_labels=np.arange(4) % 2)
    npz = {"format": "npz", "path": str(tmp_path / "s.npz"), "allow_outside": False, "params": {}}
    assert user_spec(npz) == {"format": "npz", "path": str(tmp_path / "s.npz")}
    spec = user_spec({"format": "imagefolder", "path": str(root), "params": {"fit": "crop"}})
    ds = load_user_dataset(spec, image_size=8, val_fraction=0.2, test_fraction=0.2)
    assert ds.classes == ["neg", "pos"] and ds.meta["params"]["fit"] == "crop"


def test_loader_refuses_bad_option_values(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs")
    with pytest.raises(DataError, match=r"data set .*imgs: fit must be 'stretch' or 'crop'"):
        load_user_dataset({"format": "imagefolder", "path": str(root), "fit": "squash"}, image_size=8)
    with pytest.raises(DataError, match="unknown keys"):
        load_user_dataset({"format": "imagefolder", "path": str(root), "allow_outside": True}, image_size=8)


def test_a_format_added_to_the_registry_is_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole of a new format: a loader and a registry entry (the schema enum aside)."""

    def load_stripes(path: Path, options: dict, read) -> Loaded:
        n = int(path.read_text())
        images = np.zeros((2 * n, read.channels, read.image_size, read.image_size), np.float32)
        images[n:, :, ::2] = 1.0
        labels = np.repeat([0, 1], n)
        classes = [str(c) for c in options["classes"]] if options["classes"] else ["flat", "stripes"]
        return Loaded(images, labels, classes, [None] * (2 * n), [f"g{i}" for i in range(2 * n)])

    monkeypatch.setitem(FORMATS, "stripes", Format("stripes", "file", "count file", load_stripes, "demo"))
    (tmp_path / "n.txt").write_text("10")
    ds = load_user_dataset({"format": "stripes", "path": str(tmp_path / "n.txt")}, image_size=4, channels=3)
    assert ds.images.shape == (20, 3, 4, 4) and ds.classes == ["flat", "stripes"]
    assert ds.meta["sources"][0]["format"] == "stripes" and set(ds.split) == {"train", "val", "test"}
    (tmp_path / "x").mkdir()
    with pytest.raises(ConfigError, match="must be a file for format 'stripes'"):
        formats.check_format_config({"format": "stripes", "path": "x"}, "d.s", workdir=tmp_path)


def test_the_shipped_configs_user_formats_pass_the_option_checks() -> None:
    import yaml

    root = Path(__file__).resolve().parents[1]
    seen = 0
    for path in sorted((root / "configs").glob("*.yaml")) + [root / "config.yaml"]:
        for name, entry in (yaml.safe_load(path.read_text()).get("datasets") or {}).items():
            if entry.get("format") in FORMATS:
                check_format_options(entry["format"], entry.get("params") or {}, f"datasets.{name}.params")
                seen += 1
    assert seen >= 4  # configs/paper.yaml: imagenet, radimagenet, ct, mri
