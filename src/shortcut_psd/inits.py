"""The inits fine-tuning starts from, and loading foreign weights into a model's backbone.

Inits (:func:`build_init`), as dicts (the config names them; nothing is imported by the user):

- ``{"kind": "scratch"}``: random weights, drawn from the caller's torch seed. Preprocessing: the
  target training data's own mean/std, ``in_chans`` = the data's channels.
- ``{"kind": "source", "checkpoint": path}``: a model pre-trained in the pipeline. Its weights and its
  preprocessing are kept; the classification head is replaced by a fresh one for the target classes.
- ``{"kind": "timm", "name": "resnet50.a1_in1k", "in_chans": 3}``: hub weights through timm (needs
  network once; cached by Hugging Face). Preprocessing from the weights' ``pretrained_cfg`` mean/std
  (``mean``/``std`` in the spec override it). With ``"path": "weights.safetensors"`` timm reads that
  local file instead of the hub (``pretrained_cfg_overlay=dict(file=...)``), so no network is needed.
- ``{"kind": "file", "path": ..., "arch": ..., "in_chans": 3, "mean": [...], "std": [...],
  "strict": False}``: a local state dict (for example a PyTorch conversion of RadImageNet ResNet-50),
  read with ``torch.load(weights_only=True)`` (``.safetensors`` also works). ``mean``/``std`` are
  required because the right scaling cannot be guessed from the weights; they are in units of images in
  ``[0, 1]`` (divide 0-255 values by 255). Head keys are always dropped and re-initialised.
  Key policy: ``num_batches_tracked`` buffers may be missing. With ``strict`` false (the default, as in
  the config schema) other missing or unexpected keys are reported in ``info`` and as a log warning, but
  the load fails if less than half of the backbone's tensors were found (wrong architecture, or a key
  prefix to strip); with ``strict`` true any missing or unexpected backbone key is a
  :class:`ModelError` listing a few. A shape mismatch always fails.

- ``{"kind": "file", "path": ..., "layout": "radimagenet" | "torchvision"}``: published weights in their
  own key layout, mapped to timm's, with the preprocessing they were trained with (see
  :mod:`shortcut_psd.weights`; always strict).

:func:`build_init` builds one; :func:`init_arch` (in :mod:`shortcut_psd.models`) decides which
:class:`~shortcut_psd.models.Arch` it builds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from shortcut_psd.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

INIT_KINDS = ("scratch", "source", "timm", "file")


def _strip_prefix(state: Mapping[str, Tensor], prefix: str = "module.") -> dict[str, Tensor]:
    out = {}
    for k, v in state.items():
        while k.startswith(prefix):
            k = k[len(prefix) :]
        out[k] = v
    return out


def _unwrap_state_dict(obj: Any, path: Path) -> dict[str, Tensor]:
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ModelError(
            f"weights file {path} holds no state dict (expected a dict of tensors, or one under "
            "'state_dict' or 'model')"
        )
    return _strip_prefix(obj)


def _few(keys: Sequence[str], n: int = 5) -> str:
    keys = sorted(keys)
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def load_backbone_weights(
    model: nn.Module,
    state: Mapping[str, Tensor],
    *,
    strict: bool = False,
    source: str = "weights",
    foreign: Sequence[str] = (),
) -> dict[str, list[str]]:
    """Load ``state`` into ``model`` except its head (dropped); see the module docstring for the policy.

    ``foreign``: keys of the file that its layout does not map (counted as unexpected).

    Returns ``{"missing": [...], "unexpected": [...], "dropped_head": [...]}``.
    """
    head = classifier_prefix(model) + "."
    own = model.state_dict()
    dropped = [k for k in state if k.startswith(head)]
    state = {k: v for k, v in state.items() if not k.startswith(head)}
    body = [k for k in own if not k.startswith(head)]
    missing = [k for k in body if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own] + list(foreign)
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in state
        if k in own and state[k].shape != own[k].shape
    ]
    if shapes:
        raise ModelError(f"{source}: tensor shapes differ from the architecture: {_few(shapes, 3)}")
    found = sum(1 for k in body if k in state)
    if strict and (missing or unexpected):
        raise ModelError(
            f"{source}: {len(missing)} backbone keys missing ({_few(missing)}) and {len(unexpected)} "
            f"unexpected ({_few(unexpected)}). Fix the key names (a prefix to strip?) or set strict: false "
            "to load what matches."
        )
    if found < 0.5 * len(body):
        raise ModelError(
            f"{source}: only {found} of {len(body)} backbone tensors match; is it the right architecture? "
            f"missing e.g. {_few(missing, 3)}; unexpected e.g. {_few(unexpected, 3)}"
        )
    if missing or unexpected:
        log.warning(
            "%s: loaded %d/%d backbone tensors; %d missing (%s), %d unexpected (%s)",
            source,
            found,
            len(body),
            len(missing),
            _few(missing, 3),
            len(unexpected),
            _few(unexpected, 3),
        )
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return {"missing": missing, "unexpected": unexpected, "dropped_head": dropped}


def _timm_weights(record: Arch, *, path: str | None = None) -> nn.Module:
    name = record.name
    check_arch(name)
    options: dict[str, Any] = {}
    if path is not None:
        _safe_load(path, "weights file")  # refuse unsafe pickles and name a missing file before timm reads it
        options["pretrained_cfg_overlay"] = {"file": str(path)}
    try:
        return record.create(pretrained=True, **options)
    except Exception as exc:  # noqa: BLE001 - any hub/network/cache failure means the same thing here
        if path is not None:
            raise ModelError(
                f"timm could not load weights file {path} into '{name}' ({type(exc).__name__}: "
                f"{str(exc)[:300]}); check that the file belongs to this architecture"
            ) from exc
        raise ModelError(
            f"could not download or find pretrained weights for timm model '{name}' "
            f"({type(exc).__name__}: {str(exc)[:200]}). Weights come from the Hugging Face hub and need "
            "network once. Pre-cache them on a machine with network: "
            f"python -c \"import timm; timm.create_model('{name}', pretrained=True)\" "
            "(they land in the HF cache, ~/.cache/huggingface or $HF_HOME; copy it over and set "
            "HF_HUB_OFFLINE=1), or download the weights file and add 'path': <file> to this init "
            "(timm reads it locally), or use an init {'kind': 'file', 'path': ..., 'arch': ..., "
            "'mean': ..., 'std': ...}."
        ) from exc


def build_init(
    spec: Mapping[str, Any],
    *,
    arch: str | None,
    num_classes: int,
    in_chans_data: int,
    image_mean_std: tuple[Any, Any] | None = None,
    device: str | torch.device = "cpu",
    model_kwargs: Mapping[str, Any] | None = None,
) -> tuple[nn.Module, Preprocessing, dict[str, Any]]:
    """Build the model fine-tuning starts from: ``(model on device, Preprocessing, info)``.

    ``spec`` is one of the init dicts in the module docstring. ``arch`` is required for ``scratch`` and
    is the default for ``file``; ``source`` and ``timm`` inits bring their own (a different ``arch`` is
    logged). ``image_mean_std`` is the target training data's ``(mean, std)`` (scalars or per channel),
    needed by ``scratch``. The head always has ``num_classes`` outputs and fresh weights drawn from the
    caller's torch RNG. ``model_kwargs`` are ``model.kwargs``; which init uses them is decided by
    :func:`init_arch`, the one rule. ``info`` records kind, arch (and the whole :class:`Arch` record),
    in_chans, where the weights came from, missing and unexpected keys, and the preprocessing.
    """
    if not isinstance(spec, Mapping) or "kind" not in spec:
        raise ConfigError(f"an init must be a dict with a 'kind' ({', '.join(INIT_KINDS)}); got {spec!r}")
    kind = spec["kind"]
    info: dict[str, Any] = {"kind": kind}
    if kind == "scratch":
        if not arch:
            raise ConfigError("init 'scratch' needs an architecture name (arch)")
        if image_mean_std is None:
            raise ConfigError("init 'scratch' needs image_mean_std, the target training data's (mean, std)")
        record = init_arch(
            spec,
            model_arch_name=arch,
            model_kwargs=model_kwargs,
            in_chans=in_chans_data,
            num_classes=num_classes,
        )
        model = record.create()
        prep = Preprocessing(in_chans_data, *image_mean_std)
        info.update(arch=arch)
    elif kind == "source":
        if "checkpoint" not in spec:
            raise ConfigError("init 'source' needs 'checkpoint', the path of a pre-trained model.pt")
        model, meta = load_checkpoint(spec["checkpoint"])
        prep = Preprocessing.from_dict(meta["preprocessing"])
        if arch and arch != meta["arch"]:
            log.warning(
                "init source %s is a %s, not %s; using %s",
                spec["checkpoint"],
                meta["arch"],
                arch,
                meta["arch"],
            )
        model.reset_classifier(num_classes)
        info.update(arch=meta["arch"], checkpoint=str(spec["checkpoint"]), source_meta=meta)
    elif kind == "timm":
        if "name" not in spec:
            raise ConfigError("init 'timm' needs 'name', for example resnet50.a1_in1k")
        in_chans = int(spec.get("in_chans", 3))
        path = spec.get("path")
        record = init_arch(
            spec, model_arch_name=arch, model_kwargs=model_kwargs, in_chans=in_chans, num_classes=num_classes
        )
        model = _timm_weights(record, path=path)
        cfg = model.pretrained_cfg
        mean = np.asarray(spec.get("mean", cfg["mean"]), float)
        std = np.asarray(spec.get("std", cfg["std"]), float)
        if len(mean) != in_chans:  # timm folds RGB into in_chans conv weights; use the average scaling
            mean, std = np.full(in_chans, mean.mean()), np.full(in_chans, std.mean())
        prep = Preprocessing(in_chans, mean, std)
        info.update(arch=model_arch(model), name=spec["name"], pretrained_tag=cfg.get("tag"))
        if path is not None:
            info["path"] = str(path)
    elif kind == "file":
        from shortcut_psd import weights as W

        layout = spec.get("layout", "timm")
        W.check_layout(layout)
        layout_prep = W.layout_preprocessing(layout) or {}
        needed = ("path",) if layout_prep else ("path", "mean", "std")
        missing_keys = [k for k in needed if k not in spec]
        if missing_keys:
            raise ConfigError(
                f"init 'file' needs {missing_keys}: mean/std are the input normalisation the weights were "
                "trained with, in units of [0, 1] images (or name a layout that brings them: "
                "layout: torchvision | radimagenet)"
            )
        path = Path(spec["path"])
        if W.is_hdf5(path):
            raise W.keras_refusal(path)
        raw = _unwrap_state_dict(_safe_load(path, "weights file"), path)
        state, foreign = W.to_timm_keys(raw, layout)
        record = init_arch(
            spec,
            model_arch_name=arch,
            model_kwargs=model_kwargs,
            in_chans=in_chans_data,
            num_classes=num_classes,
            file_arch=W.layout_arch(layout, raw) if layout != "timm" else None,
        )
        model = record.create()
        strict = True if layout != "timm" else bool(spec.get("strict", False))
        keys = load_backbone_weights(
            model,
            state,
            strict=strict,
            foreign=foreign,
            source=f"weights file {path}" + (f" (layout '{layout}')" if layout != "timm" else ""),
        )
        prep = Preprocessing(
            record.in_chans,
            spec.get("mean", layout_prep.get("mean")),
            spec.get("std", layout_prep.get("std")),
            channel_order=layout_prep.get("channel_order", "rgb"),
        )
        info.update(arch=record.name, path=str(path), layout=layout, **keys)
    else:
        raise ConfigError(f"unknown init kind '{kind}'; use one of {', '.join(INIT_KINDS)}")
    prep.check_channels(in_chans_data)
    record = arch_of(model)
    if record is not None:
        info["arch_record"] = record.to_fields()
    info.update(in_chans=prep.in_chans, num_classes=num_classes, preprocessing=prep.to_dict())
    return model.to(device), prep, info


# Imported last so that either module can be imported first: models imports this one at its end.
from shortcut_psd.checkpoints import _safe_load, load_checkpoint  # noqa: E402
from shortcut_psd.models import (  # noqa: E402
    Arch,
    Preprocessing,
    arch_of,
    check_arch,
    classifier_prefix,
    init_arch,
    model_arch,
)
