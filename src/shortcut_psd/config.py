"""Config validation and the study's target lists.

``prepare(config, configfiles)`` is called by the Snakefile before any rule is planned. It

1. re-reads each config file with a YAML loader that refuses duplicate keys (PyYAML silently keeps the
   last of two equal keys, which would hide a typo'd second init or artifact);
2. validates against ``workflow/schemas/config.schema.yaml`` and fills in its defaults;
3. runs the semantic checks the schema cannot express (see :func:`check_semantics`).

Every failure raises :class:`~shortcut_psd.errors.ConfigError` with the dotted key, the bad value, and
what is allowed, so the run stops before any job starts and nothing already computed is touched.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from shortcut_psd.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
#: package data, so that an installed wheel validates configs; in the source tree a link to the one copy,
#: workflow/schemas/config.schema.yaml (a wheel holds the file itself)
SCHEMA_PATH = Path(__file__).parent / "config.schema.yaml"
BUILTIN_DATASETS = ("photos", "clinical", "brain_tissue")
#: options of users' formats, given under a data set's ``params`` (see shortcut_psd.data.user)
USER_PARAMS = {
    "imagefolder": ("classes", "fit", "intensity", "licence", "description"),
    "csv": ("classes", "fit", "intensity", "licence", "description", "columns"),
    "npz": ("classes", "fit", "intensity", "licence", "description"),
}
#: built-ins with exactly two classes (the only ones that can be a fine-tuning target)
BINARY_BUILTINS = ("brain_tissue",)
#: artifact name reserved for the one p = 0 model per (init, target, seed) trained on the raw target images,
#: shared by every artifact whose clean images are the raw data (see :func:`shares_clean_model`)
CLEAN = "none"


# ------------------------------------------------------------------------------------------------
# YAML without silent duplicate keys
# ------------------------------------------------------------------------------------------------
class _UniqueKeyLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(
                f"duplicate key '{key}' at line {key_node.start_mark.line + 1} of {key_node.start_mark.name} "
                f"(first at line {seen[key] + 1}); YAML would silently keep only the last one. "
                "Rename or remove one of them."
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _check_duplicate_keys(node: yaml.Node, path: list[str], name: str, seen_nodes: set[int]) -> None:
    """Walk a composed YAML tree and refuse a key given twice in one mapping, naming its dotted key."""
    if id(node) in seen_nodes:  # an alias to a node already checked (also guards recursive aliases)
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            label = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "<complex key>"
            dotted = ".".join([*path, label])
            ident = (key_node.tag, label)
            if isinstance(key_node, yaml.ScalarNode) and ident in seen:
                raise ConfigError(
                    f"config key '{dotted}' appears twice in {name} (lines {seen[ident] + 1} and "
                    f"{key_node.start_mark.line + 1}); YAML would silently keep only the last one. "
                    "Rename or remove one of them."
                )
            seen[ident] = key_node.start_mark.line
            _check_duplicate_keys(value_node, [*path, label], name, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicate_keys(item, [*path, str(i)], name, seen_nodes)


def load_yaml(path: str | os.PathLike) -> dict:
    """Load a YAML config file, refusing duplicate keys (named by their dotted key) and naming the file
    on syntax errors."""
    path = Path(path)
    try:
        with open(path) as fh:
            text = fh.read()
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _check_duplicate_keys(node, [], str(path), set())
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys, not {type(data).__name__}")
    return data


# ------------------------------------------------------------------------------------------------
# Schema validation with defaults
# ------------------------------------------------------------------------------------------------
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


def load_schema() -> dict:
    with open(SCHEMA_PATH) as fh:
        return yaml.safe_load(fh)


def _dotted(path: Iterable[Any]) -> str:
    parts = [str(p) for p in path]
    return ".".join(parts) if parts else "(top level)"


def _subschema_at(schema: dict, error: jsonschema.ValidationError) -> dict:
    return error.schema if isinstance(error.schema, dict) else {}


def _format_error(error: jsonschema.ValidationError) -> str:
    key = _dotted(error.absolute_path)
    sub = _subschema_at(load_schema(), error)
    what = sub.get("description")
    hint = f" ({what})" if what else ""
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        close = difflib.get_close_matches(str(error.instance), [str(v) for v in error.validator_value], n=1)
        did = f"; did you mean '{close[0]}'?" if close else ""
        return f"config key '{key}': {error.instance!r} is not allowed{hint}. Allowed values: {allowed}{did}"
    if error.validator == "additionalProperties":
        allowed = sorted(sub.get("properties", {}))
        extra = [k for k in error.instance if k not in sub.get("properties", {})]
        close = {k: difflib.get_close_matches(k, allowed, n=1) for k in extra}
        sugg = "; ".join(f"'{k}' -> did you mean '{c[0]}'?" for k, c in close.items() if c)
        where = f"under '{key}'" if error.absolute_path else "at the top level"
        return f"unknown config key(s) {extra} {where}. Allowed keys: {', '.join(allowed)}" + (
            f" ({sugg})" if sugg else ""
        )
    if error.validator == "type":
        return (
            f"config key '{key}': {error.instance!r} has type {type(error.instance).__name__}, "
            f"expected {error.validator_value}{hint}"
        )
    if error.validator == "required":
        prefix = f"{key}." if error.absolute_path else ""
        said = re.match(r"^'(.+)' is a required property", error.message)  # one error per missing key
        missing = [said.group(1)] if said else [r for r in error.validator_value if r not in error.instance]
        name = f"{prefix}{missing[0]}" if missing else key
        what = (sub.get("properties", {}).get(missing[0], {}).get("description") if missing else None) or ""
        return (
            f"config key '{name}' is required but missing"
            + (f" ({what})" if what else "")
            + (
                f"; '{key}' is {sub.get('description')}"
                if error.absolute_path and sub.get("description")
                else ""
            )
            + ". Add it (see config.yaml for an example)"
        )
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


# ------------------------------------------------------------------------------------------------
# Semantic checks
# ------------------------------------------------------------------------------------------------
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


def check_semantics(config: dict, *, workdir: str | os.PathLike = ".", check_model: bool = True) -> None:
    """Checks the schema cannot express; each failure names the key and the fix."""
    from shortcut_psd import artifacts as artifacts_mod
    from shortcut_psd import edits as edits_mod

    workdir = Path(workdir)
    if not str(config["results"]).strip():
        raise ConfigError(
            "config key 'results': '' is empty; outputs would land at the file system root ('/data', "
            "'/tables'). Give a folder, for example 'results'"
        )
    results = Path(config["results"])
    if results.is_absolute() is False and ".." in results.parts:
        raise ConfigError(
            f"config key 'results': {config['results']!r} climbs out of the working directory with '..'; "
            "give a folder inside it or an absolute path"
        )

    datasets = config["datasets"]
    for name, spec in datasets.items():
        key = f"datasets.{name}"
        if spec["format"] == "builtin":
            builtin = spec.get("builtin", name)
            if builtin not in BUILTIN_DATASETS:
                raise _unknown("built-in data set", builtin, BUILTIN_DATASETS, f"{key}.builtin")
            if "path" in spec:
                raise ConfigError(f"config key '{key}.path': a built-in data set takes no path; remove it")
        else:
            if "path" not in spec:
                raise ConfigError(
                    f"config key '{key}.path' is required for format '{spec['format']}': give the "
                    + {
                        "imagefolder": "folder of class sub-folders",
                        "csv": "CSV manifest",
                        "npz": "NPZ file",
                    }[spec["format"]]
                )
            path = workdir / spec["path"]
            if not path.exists():
                raise ConfigError(
                    f"config key '{key}.path': {spec['path']} does not exist (relative to {workdir.resolve()}); "
                    "fix the path or prepare the data first"
                )
            allowed = USER_PARAMS[spec["format"]]
            extra = sorted(set(spec.get("params") or {}) - set(allowed))
            if extra:
                raise ConfigError(
                    f"config key '{key}.params': {extra} are not options of format '{spec['format']}'. "
                    f"Allowed: {', '.join(allowed)}"
                )
            want_dir = spec["format"] == "imagefolder"
            if want_dir != path.is_dir():
                raise ConfigError(
                    f"config key '{key}.path': {spec['path']} must be a {'folder' if want_dir else 'file'} "
                    f"for format '{spec['format']}'"
                )
        if spec["val_fraction"] + spec["test_fraction"] >= 1:
            raise ConfigError(
                f"config key '{key}': val_fraction + test_fraction = {spec['val_fraction']} + "
                f"{spec['test_fraction']} must be below 1 (the rest is the training split)"
            )

    for i, target in enumerate(config["targets"]):
        if target not in datasets:
            raise _unknown("data set", target, datasets, f"targets[{i}]")
        spec = datasets[target]
        if spec["format"] == "builtin" and spec.get("builtin", target) not in BINARY_BUILTINS:
            raise ConfigError(
                f"config key 'targets[{i}]': built-in data set '{target}' "
                f"({spec.get('builtin', target)}) is not a binary task; the shortcut protocol needs a "
                f"positive and a negative class. Binary built-ins: {', '.join(BINARY_BUILTINS)}; or use "
                "your own two-class data set"
            )

    names: dict[str, float] = {}
    for i, p in enumerate(config["prevalences"]):
        name = fmt_p(p)
        if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", name):
            raise ConfigError(
                f"config key 'prevalences[{i}]': {p!r} cannot be written as a plain decimal in file names "
                f"('p{name}'); use 0 or a value of at least 0.0001"
            )
        if name in names:
            raise ConfigError(
                f"config key 'prevalences[{i}]': {p!r} and {names[name]!r} both become 'p{name}' in file "
                "names; give prevalences that differ in their first 6 significant digits"
            )
        names[name] = p

    edits = config["edits"]
    for name, spec in edits.items():
        params = {k: v for k, v in spec.items() if k != "kind"}
        _check_params(f"edits.{name}", spec["kind"], params, edits_mod.edit_defaults(spec["kind"]))
        try:
            edits_mod.check_edit_params(spec["kind"], params)
        except ConfigError as exc:
            raise ConfigError(f"config key 'edits.{name}': {exc}") from exc

    for name, spec in config["inits"].items():
        key = f"inits.{name}"
        kind = spec["kind"]
        allowed = {
            "scratch": set(),
            "source": {"source", "edit"},
            "timm": {"name", "in_chans", "mean", "std", "arch", "kwargs"},
            "file": {"path", "arch", "in_chans", "mean", "std", "strict", "layout", "kwargs"},
        }[kind] | {"kind", "edit", "strict"}
        extra = sorted(set(spec) - allowed)
        if extra:
            raise ConfigError(f"config key '{key}': {extra} do not apply to kind '{kind}'; remove them")
        if kind == "source":
            if "source" not in spec:
                raise ConfigError(f"config key '{key}.source' is required for kind 'source': name a data set")
            if spec["source"] not in datasets:
                raise _unknown("source data set", spec["source"], datasets, f"{key}.source")
            if spec["edit"] not in edits:
                raise _unknown("edit", spec["edit"], edits, f"{key}.edit")
        if kind == "timm" and "name" not in spec:
            raise ConfigError(f"config key '{key}.name' is required for kind 'timm', e.g. resnet50.a1_in1k")
        if kind == "file":
            if "path" not in spec:
                raise ConfigError(f"config key '{key}.path' is required for kind 'file': a local state dict")
            for k in ("mean", "std"):
                if k not in spec and spec.get("layout", "timm") == "timm":
                    raise ConfigError(
                        f"config key '{key}.{k}' is required for kind 'file': the input normalisation the "
                        "weights were trained with, for images scaled to [0, 1] (for example ImageNet's "
                        "[0.485, 0.456, 0.406] / [0.229, 0.224, 0.225]), or name a layout that brings it "
                        "(layout: torchvision | radimagenet)"
                    )
            if not (workdir / spec["path"]).is_file():
                raise ConfigError(
                    f"config key '{key}.path': checkpoint {spec['path']} does not exist; fix the path "
                    "or convert the weights first (see README, 'Your own weights')"
                )
        if ("mean" in spec) != ("std" in spec):
            raise ConfigError(
                f"config key '{key}': mean {spec.get('mean')} and std {spec.get('std')}: give both, or neither"
            )
        if "mean" in spec:
            chans = spec.get("in_chans", config["image"]["channels"])
            for k in ("mean", "std"):
                if len(spec[k]) not in (1, chans):
                    raise ConfigError(f"config key '{key}.{k}' needs 1 or {chans} values, got {len(spec[k])}")

    for name, spec in config["artifacts"].items():
        key = f"artifacts.{name}"
        if name == CLEAN:
            raise ConfigError(
                f"config key '{key}': the artifact name '{CLEAN}' is reserved for the clean (p = 0) models; "
                "rename it"
            )
        params = {k: v for k, v in spec.items() if k != "kind"}
        try:  # a parameter the kind no longer takes: name what replaced it
            artifacts_mod.check_retired_params(spec["kind"], params)
        except ConfigError as exc:
            raise ConfigError(f"config key '{key}': {exc}") from exc
        _check_params(key, spec["kind"], params, artifacts_mod.artifact_defaults(spec["kind"]))
        try:
            artifacts_mod.check_artifact_params(spec["kind"], params)
        except ConfigError as exc:
            raise ConfigError(f"config key '{key}': {exc}") from exc

    bands = config["psd"]["bands_cpp"]
    if not bands[0] < bands[1]:
        raise ConfigError(
            f"config key 'psd.bands_cpp': {bands} must be increasing (low/mid edge < mid/high edge)"
        )

    for rule, req in config["resources"].items():
        if req["mem_mb"] > 2_000_000:
            raise ConfigError(
                f"config key 'resources.{rule}.mem_mb': {req['mem_mb']} MB is more than any node has"
            )

    if check_model:
        check_model_fits(config)

    probes_cfg = config.get("probes") or {}
    if probes_cfg.get("enabled", False):  # the probes' bands must hold a frequency bin of the images
        from shortcut_psd.probes import resolve_bands

        size = int(config["image"]["size"])
        try:
            resolve_bands(probes_cfg.get("bands", "auto"), size, size, int(probes_cfg.get("n_bands", 8)))
        except ConfigError as exc:
            key = re.split(r"[=:]", str(exc), maxsplit=1)[0]
            raise ConfigError(f"config key '{key}' (image.size {size}): {exc}") from exc


def check_model_fits(config: dict) -> None:
    """Every architecture exists in timm and accepts images of ``image.size`` (one forward on zeros).

    Checked: the :class:`~shortcut_psd.models.Arch` of every init exactly as it will be built
    (:func:`~shortcut_psd.models.init_arch`: ``model.arch`` with ``model.kwargs`` and the data's channels,
    and each ``timm``/``file`` init's architecture with its kwargs and ``in_chans``). Errors name the key to
    change and, for a size the model cannot take, the kwargs that would fix it (tried before suggesting).
    """
    from shortcut_psd.models import Arch, init_arch
    from shortcut_psd.weights import LAYOUTS

    size, chans = config["image"]["size"], config["image"]["channels"]
    arch, kwargs = config["model"]["arch"], config["model"]["kwargs"]
    checks = [("model.arch", "model.kwargs", (arch, chans, kwargs))]
    for name, spec in config["inits"].items():
        if spec["kind"] not in ("timm", "file"):
            continue
        file_arch = LAYOUTS.get(spec.get("layout", "timm"), {}).get("arch")
        if spec["kind"] == "file" and not (spec.get("arch") or file_arch):
            continue  # a torchvision file's ResNet depth is read from the file when the job runs
        key = f"inits.{name}.{'name' if spec['kind'] == 'timm' else 'arch'}"
        try:
            rec = init_arch(
                spec,
                model_arch_name=arch,
                model_kwargs=kwargs,
                in_chans=chans,
                num_classes=2,
                file_arch=file_arch,
            )
        except Exception as exc:  # ModelError for kwargs that clash with in_chans/num_classes
            raise ConfigError(f"config key 'inits.{name}': {exc}") from exc
        kw_key = f"inits.{name}.kwargs" if "kwargs" in spec or not rec.kwargs else "model.kwargs"
        checks.append((key, kw_key, (rec.name, rec.in_chans, rec.kwargs)))
    done = set()
    for key, kw_key, (name, in_chans, kw) in checks:
        if not timm_is_model(name):
            import timm

            close = difflib.get_close_matches(name, timm.list_models(), n=3)
            raise ConfigError(
                f"config key '{key}': '{name}' is not a timm architecture"
                + (f"; close names: {', '.join(close)}" if close else "")
                + ". See timm.list_models()"
            )
        ident = (name, in_chans, json.dumps(dict(kw), sort_keys=True, default=str))
        if ident in done:
            continue
        done.add(ident)
        try:
            record = Arch(name, in_chans, 2, kw)
            model = record.create()
        except Exception as exc:  # timm raises many kinds for bad kwargs
            raise ConfigError(
                f"config key '{kw_key}': model '{name}' cannot be created with options {dict(kw)} "
                f"({type(exc).__name__}: {exc}). Fix or remove the option"
            ) from exc
        try:
            _forward_zeros(model, in_chans, size)
        except Exception as exc:  # too small for the strides, or a ViT with a fixed img_size / patch size
            fix = _size_fix(record, size)
            how = (
                f"Set {kw_key}: {_flow(fix)} (checked: the model then takes this size), or use another "
                "image.size"
                if fix is not None
                else "No img_size/patch_size option makes it fit; use a larger image.size or another model"
            )
            raise ConfigError(
                f"config key 'image.size': {size} does not suit '{name}' ({key}, options {dict(kw)}): it "
                f"cannot take {in_chans}x{size}x{size} images ({type(exc).__name__}: {str(exc)[:300]}). {how}"
            ) from exc
        del model


def timm_is_model(name: str) -> bool:
    import timm

    return isinstance(name, str) and timm.is_model(name)


def _forward_zeros(model, in_chans: int, size: int) -> None:
    import torch

    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, in_chans, size, size))


def _flow(d: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}"


def _size_fix(record, size: int) -> dict | None:
    """Kwargs (the record's own, plus ``img_size`` and, if needed, a ``patch_size`` dividing ``size``) with
    which the architecture takes ``size`` images; None if none does (or the model takes no such option)."""
    from shortcut_psd.models import Arch

    kw = dict(record.kwargs)
    # at least 2 x 2 patches: the configured patch size if it allows that, else the largest that does
    patch = kw.get("patch_size")
    patches = [p for p in (16, 14, 8, 4, 2) if size % p == 0 and size // p >= 2]
    candidates = [{**kw, "img_size": size}] if patch and size % patch == 0 and size // patch >= 2 else []
    candidates += [{**kw, "img_size": size, "patch_size": p} for p in patches]
    candidates.append({**kw, "img_size": size})
    for cand in candidates:
        if cand == kw:
            continue
        try:
            model = Arch(record.name, record.in_chans, 2, cand).create()
            _forward_zeros(model, record.in_chans, size)
            return cand
        except Exception:  # noqa: BLE001, S112 - a candidate that does not work is skipped
            continue
    return None


def prepare(
    config: dict, configfiles: Iterable[str | os.PathLike] = (), *, workdir=".", check_model=True
) -> dict:
    """Validate ``config`` in place (defaults filled) and check it; the Snakefile calls this first."""
    for f in configfiles:
        load_yaml(f)  # duplicate keys and syntax errors, with the file named
    validate(config)
    check_semantics(config, workdir=workdir, check_model=check_model)
    return config


# ------------------------------------------------------------------------------------------------
# Names, hashes and the study's grid
# ------------------------------------------------------------------------------------------------
def fmt_p(p: float) -> str:
    """Prevalence as used in paths: 0, 0.1, 0.5, 1."""
    return f"{float(p):g}"


def config_hash(obj: Any) -> str:
    """Short stable hash of a JSON-serialisable value (stored in checkpoints to trace them to a config)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def source_pairs(config: dict) -> list[tuple[str, str]]:
    """(source data set, edit) pairs that must be pre-trained."""
    pairs = {(s["source"], s["edit"]) for s in config["inits"].values() if s["kind"] == "source"}
    return sorted(pairs)


def source_datasets(config: dict) -> list[str]:
    return sorted({s for s, _ in source_pairs(config)})


def shares_clean_model(config: dict, artifact: str) -> bool:
    """Whether ``artifact``'s p = 0 model is the shared clean model (artifact :data:`CLEAN`).

    True when the artifact's kind returns the raw images as its clean images
    (:data:`shortcut_psd.artifacts.CLEAN_IS_RAW`): a model trained on the raw target images is then
    exactly its p = 0 model. False (``photon_noise``: baseline-dose noise on every image): the artifact
    gets its own p = 0 model, trained on its own clean images in its fine-tuning job. The one place this
    rule lives (docs/DEFINITIONS.md, "Baselines").
    """
    from shortcut_psd.artifacts import clean_is_raw

    return clean_is_raw(config["artifacts"][artifact]["kind"])


def clean_model_artifacts(config: dict) -> list[str]:
    """The artifacts whose p = 0 metrics come from the shared clean model (rule evaluate_clean_model)."""
    return sorted(a for a in config["artifacts"] if shares_clean_model(config, a))


def own_p0_artifacts(config: dict) -> list[str]:
    """The artifacts that train their own p = 0 model (on their clean images), when 0 is a prevalence."""
    if not any(float(p) == 0 for p in config["prevalences"]):
        return []
    return sorted(a for a in config["artifacts"] if not shares_clean_model(config, a))


def shortcut_prevalences(config: dict, artifact: str) -> list[str]:
    """Prevalences (as in paths) trained in ``artifact``'s fine-tuning job, in order: every p > 0, after
    p = 0 for an artifact with its own p = 0 model."""
    ps = sorted({float(p) for p in config["prevalences"]})
    own = artifact in own_p0_artifacts(config)
    return [fmt_p(p) for p in ps if p > 0 or own]


def artifact_seed_for(config: dict, seed: int) -> int:
    """Seed of the artifact images that training seed ``seed`` uses: ``artifact_seed + seed`` when
    ``artifact_seed_follows_seed`` (default), else ``artifact_seed`` for every training seed."""
    base = int(config.get("artifact_seed", 0))
    return base + int(seed) if config.get("artifact_seed_follows_seed", True) else base


def artifact_seeds(config: dict) -> list[int]:
    """The distinct artifact seeds of the study (one set of artifact images per target, artifact and seed)."""
    return sorted({artifact_seed_for(config, s) for s in config["seeds"]})


def finetune_conditions(config: dict) -> list[tuple[str, str, str, str, int]]:
    """Every trained model as (init, target, artifact, p, seed).

    p = 0 models: one under artifact :data:`CLEAN` per (init, target, seed), when some artifact shares it,
    and one per artifact that does not (:func:`own_p0_artifacts`), under that artifact's name.
    """
    shared = clean_model_artifacts(config)
    out = []
    for init in config["inits"]:
        for target in config["targets"]:
            for seed in config["seeds"]:
                for p in config["prevalences"]:
                    if float(p) == 0:
                        if shared:
                            out.append((init, target, CLEAN, fmt_p(0), seed))
                        for art in own_p0_artifacts(config):
                            out.append((init, target, art, fmt_p(0), seed))
                    else:
                        for art in config["artifacts"]:
                            out.append((init, target, art, fmt_p(p), seed))
    return sorted(set(out))


def psd_options(psd: Mapping[str, Any]) -> dict[str, Any]:
    """The config's ``psd`` section as keyword arguments of the spectral functions (one mapping for all):
    :func:`~shortcut_psd.gradients.gradient_psd`, ``image_psd`` and ``artifact_psd`` all take them, so
    gradient, artifact and source spectra share window (and Tukey shape), spectrum, channel reduction,
    normalisation, corners and bands. ``tukey_alpha`` defaults to 0.5 for a section validated before the
    key existed."""
    return {
        "batch_size": int(psd["batch_size"]),
        "window": psd["window"],
        "tukey_alpha": float(psd.get("tukey_alpha", 0.5)),
        "spectrum": psd["spectrum"],
        "channels": psd["channels"],
        "normalise": psd["normalise"],
        "include_corners": bool(psd["include_corners"]),
        "bands": tuple(psd["bands_cpp"]),
    }
