"""Does every architecture of the config exist in timm and take images of ``image.size``?

Checked by building each model exactly as the jobs will and forwarding zeros through it; errors name the
key to change and, for a size the model cannot take, kwargs that would fix it (tried before suggesting).
Passed checks are cached (:mod:`shortcut_psd.config.fit_cache`): with every check of a config cached,
neither torch nor timm is imported. Which architectures a config builds is worked out without either
(:func:`shortcut_psd.model_records.init_arch`), so only an uncached check pays their import time.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from shortcut_psd.config.fit_cache import FitCache, Ident, kwargs_json
from shortcut_psd.errors import ConfigError

#: one check: (key naming the architecture, key of its kwargs, (name, in_chans, kwargs))
Check = tuple[str, str, tuple[str, int, Mapping[str, Any]]]


def _arch_inits(config: dict) -> dict[str, dict]:
    return {n: s for n, s in config["inits"].items() if s["kind"] in ("timm", "file")}


def _resolve_checks(config: dict) -> list[Check]:
    """The :class:`~shortcut_psd.models.Arch` of every init exactly as it will be built
    (:func:`~shortcut_psd.models.init_arch`: ``model.arch`` with ``model.kwargs`` and the data's channels,
    and each ``timm``/``file`` init's architecture with its kwargs and ``in_chans``)."""
    chans = config["image"]["channels"]
    arch, kwargs = config["model"]["arch"], config["model"]["kwargs"]
    checks: list[Check] = [("model.arch", "model.kwargs", (arch, chans, kwargs))]
    arch_inits = _arch_inits(config)
    if not arch_inits:
        return checks
    from shortcut_psd.model_records import init_arch  # torch-free, like weights
    from shortcut_psd.weights import LAYOUTS

    for name, spec in arch_inits.items():
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
    return checks


def _ident(check: Check) -> Ident:
    name, in_chans, kw = check[2]
    return (name, int(in_chans), kwargs_json(kw))


def check_model_fits(config: dict) -> None:
    """Every architecture exists in timm and accepts images of ``image.size`` (one forward on zeros).

    Checked: the :class:`~shortcut_psd.models.Arch` of every init exactly as it will be built
    (:func:`~shortcut_psd.models.init_arch`: ``model.arch`` with ``model.kwargs`` and the data's channels,
    and each ``timm``/``file`` init's architecture with its kwargs and ``in_chans``). Errors name the key to
    change and, for a size the model cannot take, the kwargs that would fix it (tried before suggesting).
    Checks that passed before, with the same torch and timm, are not run again.
    """
    size = config["image"]["size"]
    cache = FitCache()
    checks = _resolve_checks(config)
    if cache.all_passed([_ident(c) for c in checks], size):
        return
    try:
        _run_checks(checks, size, cache)
    finally:
        cache.save()


def _run_checks(checks: list[Check], size: int, cache: FitCache) -> None:
    done: set[Ident] = set()
    for check in checks:
        key, kw_key, (name, in_chans, kw) = check
        ident = _ident(check)
        if cache.passed(ident, size):
            continue
        if not timm_is_model(name):
            import timm

            close = difflib.get_close_matches(name, timm.list_models(), n=3)
            raise ConfigError(
                f"config key '{key}': '{name}' is not a timm architecture"
                + (f"; close names: {', '.join(close)}" if close else "")
                + ". See timm.list_models()"
            )
        if ident in done:
            continue
        done.add(ident)
        _check_fit(key, kw_key, name, in_chans, kw, size)
        cache.add_fit(ident, size)


def _check_fit(key: str, kw_key: str, name: str, in_chans: int, kw: Mapping[str, Any], size: int) -> None:
    """Build ``name`` with ``kw`` and forward ``in_chans x size x size`` zeros, or raise naming the fix."""
    from shortcut_psd.model_records import Arch

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
            f"Set {kw_key}: {_flow(fix)} (checked: the model then takes this size), or use another image.size"
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
    from shortcut_psd.model_records import Arch

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
