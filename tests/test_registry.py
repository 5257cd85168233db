"""The registry of edits and artifacts: specs, defaults, messages, the config schema's kinds, no torch."""

from __future__ import annotations

import copy
import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shortcut_psd.artifacts import ARTIFACTS, CLEAN_IS_RAW, artifact_kinds, clean_is_raw
from shortcut_psd.config import load_schema
from shortcut_psd.edits import EDITS, edit_kinds
from shortcut_psd.errors import ConfigError
from shortcut_psd.registry import Param, Registry

REGISTRIES = {"edits": EDITS, "artifacts": ARTIFACTS}
SPECS = [
    pytest.param(reg, kind, name, spec, id=f"{kind}.{name}")
    for reg in REGISTRIES.values()
    for kind in reg.kinds()
    for name, spec in reg.entry(kind).params.items()
]


@pytest.mark.parametrize("section", sorted(REGISTRIES))
def test_schema_kind_enums_come_from_the_registries(section):
    """The schema file holds no copy of the kinds (it cannot drift); the loaded schema takes the registry's."""
    import yaml

    from shortcut_psd.config import SCHEMA_PATH

    raw = yaml.safe_load(SCHEMA_PATH.read_text())["properties"][section]["additionalProperties"]["properties"]
    assert "enum" not in raw["kind"], (
        f"{section}.kind lists its kinds in the YAML file: leave them to the registry"
    )
    enum = load_schema()["properties"][section]["additionalProperties"]["properties"]["kind"]["enum"]
    assert sorted(enum) == REGISTRIES[section].kinds() and len(enum) == len(set(enum))
    assert edit_kinds() == EDITS.kinds() and artifact_kinds() == ARTIFACTS.kinds()


def test_a_newly_registered_artifact_kind_is_a_valid_config_kind():
    """Adding an artifact kind touches only its module: the schema accepts it once it is registered."""
    from shortcut_psd.config import load_yaml, validate

    cfg = load_yaml(Path(__file__).resolve().parents[1] / "config.yaml")
    cfg["artifacts"] = {"ring": {"kind": "test_ring"}}
    with pytest.raises(ConfigError, match="test_ring"):
        validate(copy.deepcopy(cfg))

    @ARTIFACTS.register("test_ring", signature="one ring of frequencies", params={})
    def test_ring(images, rng):
        return images, np.zeros(len(images), bool)

    try:
        validate(copy.deepcopy(cfg))
    finally:
        del ARTIFACTS._entries["test_ring"]


def _out_of_bounds(spec: Param) -> list:
    """Values just outside each bound: the open end itself, or one past a closed end."""
    values = []
    if spec.lo is not None:
        values.append(spec.lo if spec.lo_open else spec.lo - 1)
    if spec.hi is not None:
        values.append(spec.hi if spec.hi_open else spec.hi + 1)
    return values


@pytest.mark.parametrize(("reg", "kind", "name", "spec"), SPECS)
def test_every_param_refuses_bad_values_naming_the_param(reg, kind, name, spec):
    bad = (
        _out_of_bounds(spec)
        + {
            "int": ["3", 2.5, True],
            "float": ["0.1", float("nan"), float("inf"), False],
            "bool": ["yes", 1],
            "str": [1],
            "choice": ["no-such-choice", 0],
        }[spec.type]
    )
    if not spec.nullable:
        bad.append(None)
    for value in bad:
        with pytest.raises(ConfigError, match=rf"^{kind}: {name}\b") as exc:
            reg.check(kind, {name: value})
        assert repr(value) in str(exc.value)
    assert reg.check(kind, {name: spec.default})[name] == spec.default


def test_bounded_params_exist_and_messages_state_the_range():
    assert sum(1 for p in SPECS if p.values[3].bounded) >= 15
    with pytest.raises(
        ConfigError, match=r"^lowpass: cutoff_cpp must be a number > 0 and <= 0.5 cycles/pixel"
    ):
        EDITS.check("lowpass", {"cutoff_cpp": 0.8})
    with pytest.raises(ConfigError, match=r"^photon_noise: n_angles must be an integer >= 1 or null; got 0$"):
        ARTIFACTS.check("photon_noise", {"n_angles": 0})
    with pytest.raises(ConfigError, match=r"^band_noise: f_lo_cpp \(0.3\) must be below f_hi_cpp \(0.2\)$"):
        ARTIFACTS.check("band_noise", {"f_lo_cpp": 0.3, "f_hi_cpp": 0.2})
    assert ARTIFACTS.check("photon_noise", {"n_angles": None})["n_angles"] is None


@pytest.mark.parametrize("reg", REGISTRIES.values(), ids=list(REGISTRIES))
def test_defaults_are_the_signatures_and_describe_lists_every_param(reg):
    for kind in reg.kinds():
        sig = inspect.signature(reg[kind]).parameters
        keyword = {n: p.default for n, p in sig.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
        assert reg.defaults(kind) == keyword and list(reg.defaults(kind)) == list(keyword)
        assert reg.check(kind, {}) == keyword
        text = reg.describe(kind)
        entry = reg.entry(kind)
        assert text.endswith(f"Spectral signature: {entry.signature}") and entry.signature
        for name, spec in entry.params.items():
            assert f"  {name} ({spec.summary()}; default " in text


def test_clean_is_raw_and_retired_are_registry_attributes():
    assert dict(CLEAN_IS_RAW) == {k: k != "photon_noise" for k in artifact_kinds()}
    assert all(clean_is_raw(k) is CLEAN_IS_RAW[k] for k in artifact_kinds())
    with pytest.raises(ConfigError, match=r"unknown artifact 'blur'; choose one of \['band_noise'"):
        clean_is_raw("blur")
    assert sorted(ARTIFACTS.entry("nlm_denoise").retired) == ["min_sigma", "sigma_estimator", "strength"]
    with pytest.raises(ConfigError, match=r"nlm_denoise: parameter\(s\) \['strength'\] were removed"):
        ARTIFACTS.check("nlm_denoise", {"strength": 1.0})


def test_registration_mistakes_fail_at_import_time():
    reg = Registry("thing", extras={"flag": True})

    def fn(images, *, a: float = 0.5, b: str = "x"):
        """Doc."""
        return images

    specs = {"a": Param("float", lo=0, hi=1), "b": Param("choice", choices=("x", "y"))}
    reg.register("ok", signature="flat", params=specs)(fn)
    assert reg.defaults("ok") == {"a": 0.5, "b": "x"} and reg.entry("ok").extras == {"flag": True}
    assert reg.attribute("flag")["ok"] is True and list(reg) == ["ok"] and reg["ok"] is fn
    mistakes = [
        ("ok", {"signature": "s", "params": specs}),  # twice
        ("a", {"signature": "s", "params": {"a": specs["a"]}}),  # b has no spec
        ("b", {"signature": "s", "params": {**specs, "c": Param("int")}}),  # c is no parameter
        ("c", {"signature": "s", "params": {**specs, "a": Param("float", lo=0, hi=0.25)}}),  # bad default
        ("d", {"signature": "s", "params": {**specs, "a": Param("float", default=0.5)}}),  # default twice
    ]
    for name, kwargs in mistakes:
        with pytest.raises(TypeError):
            reg.register(name, **kwargs)(fn)
    with pytest.raises(TypeError, match="unknown attribute"):
        reg.register("e", signature="s", params=specs, colour="red")

    def no_default(images, *, a):
        return images

    with pytest.raises(TypeError, match="needs a default"):
        reg.register("f", signature="s", params={"a": Param("float")})(no_default)
    for bad in (
        dict(type="complex"),
        dict(type="choice"),
        dict(type="str", lo=0),
        dict(type="int", choices=(1,)),
    ):
        with pytest.raises(ValueError):
            Param(**bad)


def test_importing_edits_and_artifacts_leaves_torch_out():
    code = (
        "import sys\n"
        "import shortcut_psd.artifacts, shortcut_psd.edits\n"
        "heavy = sorted(m for m in ('torch', 'skimage', 'scipy') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
