"""Published weight files: their key layouts, the preprocessing they were trained with, and inspection.

A ``file`` init names the layout of its state dict (``layout:``), and the layout maps the file's keys
to timm's and brings the input preprocessing the weights were trained with:

- ``timm`` (default): keys are the timm model's own (``conv1.weight``, ``layer1.0.conv1.weight``, ...);
  ``mean``/``std`` must be given in the init.
- ``torchvision``: a torchvision ResNet checkpoint (``resnet50-*.pth``; keys ``conv1.weight``, ``bn1.*``,
  ``layer1..4.*``, ``fc.*``), which timm's ResNets share key for key. Architecture from the keys
  (resnet18/34/50/101/152); preprocessing ImageNet mean/std, RGB.
- ``radimagenet``: RadImageNet's PyTorch ResNet-50, the state dict of a module whose ``backbone`` is
  ``nn.Sequential(*torchvision.models.resnet50().children()[:9])`` (keys ``backbone.0.weight`` = conv1,
  ``backbone.1.*`` = bn1, ``backbone.4..7.*`` = layer1..4). Preprocessing: inputs scaled to [-1, 1] as
  ``(x - 127.5) * 2 / 255`` (mean = std = 0.5 for images in [0, 1]), channels in OpenCV's BGR order.

A file that is not in its layout fails with the missing and unexpected keys named
(:func:`shortcut_psd.models.load_backbone_weights`, always strict for a named layout). The original
Keras ``.h5`` RadImageNet release is not read: no conversion is verified against Keras in this project's
tests (docs/DEFINITIONS.md, "Inits"); :func:`inspect_weights` recognises such a file and says so.

:func:`inspect_weights` reads a file with ``torch.load(weights_only=True)`` only (no code from the file is
run), says which layout it has and its architecture, and tries the load.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shortcut_psd.errors import ConfigError, ModelError

if TYPE_CHECKING:  # the config check imports this module: no torch at start-up
    from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: layout name -> default architecture (None: from the keys or the config), preprocessing, description
LAYOUTS: dict[str, dict[str, Any]] = {
    "timm": {
        "arch": None,
        "preprocessing": None,
        "description": "timm's own state-dict keys; give mean/std in the init",
    },
    "torchvision": {
        "arch": None,  # from the keys (resnet18/34/50/101/152)
        "preprocessing": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "channel_order": "rgb"},
        "description": "torchvision ResNet checkpoint (resnet50-*.pth); ImageNet mean/std, RGB",
    },
    "radimagenet": {
        "arch": "resnet50",
        "preprocessing": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "channel_order": "bgr"},
        "description": "RadImageNet PyTorch ResNet-50 (backbone.0 .. backbone.7); [-1, 1] scaling, BGR",
    },
}

#: torchvision's nn.Sequential(*resnet.children()[:9]) index -> timm/torchvision ResNet module name
_RADIMAGENET_MODULES = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}
#: blocks per stage and block type -> torchvision/timm ResNet name
_RESNETS = {
    ((2, 2, 2, 2), False): "resnet18",
    ((3, 4, 6, 3), False): "resnet34",
    ((3, 4, 6, 3), True): "resnet50",
    ((3, 4, 23, 3), True): "resnet101",
    ((3, 8, 36, 3), True): "resnet152",
}
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown weights layout '{layout}'; use one of {', '.join(LAYOUTS)}")


def layout_preprocessing(layout: str) -> dict[str, Any] | None:
    """The preprocessing (mean, std, channel order) a layout's weights were trained with, or None."""
    check_layout(layout)
    pre = LAYOUTS[layout]["preprocessing"]
    return dict(pre) if pre else None


def to_timm_keys(state: Mapping[str, Tensor], layout: str) -> tuple[dict[str, Tensor], list[str]]:
    """Rename a state dict of ``layout`` to timm's keys: ``(renamed, foreign)``, ``foreign`` the keys that
    are not of the layout (a strict load reports them as unexpected)."""
    check_layout(layout)
    if layout != "radimagenet":
        return dict(state), []
    out, foreign = {}, []
    for k, v in state.items():
        m = re.match(r"^backbone\.(\d+)\.(.+)$", k)
        if m and m.group(1) in _RADIMAGENET_MODULES:
            out[f"{_RADIMAGENET_MODULES[m.group(1)]}.{m.group(2)}"] = v
        else:
            foreign.append(k)
    return out, foreign


def resnet_arch_from_keys(state: Mapping[str, Tensor]) -> str | None:
    """The torchvision/timm ResNet name whose block counts and block type the keys have, or None."""
    blocks = []
    for stage in (1, 2, 3, 4):
        idx = {int(m.group(1)) for k in state if (m := re.match(rf"^layer{stage}\.(\d+)\.", k))}
        if not idx:
            return None
        blocks.append(max(idx) + 1)
    bottleneck = "layer1.0.conv3.weight" in state
    return _RESNETS.get((tuple(blocks), bottleneck))


def detect_layout(state: Mapping[str, Tensor]) -> str | None:
    """``radimagenet``, ``torchvision`` (a ResNet with torchvision's keys, also timm's), or None."""
    if "backbone.0.weight" in state and any(k.startswith("backbone.4.0.") for k in state):
        return "radimagenet"
    if "conv1.weight" in state and "bn1.running_mean" in state and resnet_arch_from_keys(state):
        return "torchvision"
    return None


def layout_arch(layout: str, state: Mapping[str, Tensor]) -> str | None:
    """The architecture a layout implies: fixed (radimagenet), from the keys (torchvision), or None."""
    check_layout(layout)
    if LAYOUTS[layout]["arch"]:
        return LAYOUTS[layout]["arch"]
    if layout == "torchvision":
        return resnet_arch_from_keys(state)
    return None


def is_hdf5(path: str | os.PathLike) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(8) == HDF5_MAGIC
    except OSError:
        return False


def keras_refusal(path: str | os.PathLike) -> ModelError:
    return ModelError(
        f"weights file {path} is a Keras/HDF5 file (the original RadImageNet release). It is not read "
        "here: no Keras conversion is verified numerically in this project. Use RadImageNet's PyTorch "
        "ResNet-50 with layout: radimagenet instead"
    )


def inspect_weights(path: str | os.PathLike, *, arch: str | None = None, layout: str | None = None) -> dict:
    """What a weights file is, without running code from it (``torch.load(weights_only=True)`` only).

    Returns ``{"path", "layout", "arch", "n_tensors", "loads", "reason", "preprocessing", "example_keys"}``:
    ``layout`` is detected (``shortcut-psd-checkpoint``, ``radimagenet``, ``torchvision``, ``keras-h5``,
    or ``unknown``) unless given; ``loads`` says whether a ``file`` init with that layout (and ``arch``,
    when given or implied) loads it strictly, ``reason`` why not.
    """
    from shortcut_psd import models as M

    path = Path(path)
    out: dict[str, Any] = {"path": str(path), "layout": layout, "arch": arch, "n_tensors": 0}
    if is_hdf5(path):
        out.update(layout="keras-h5", loads=False, reason=str(keras_refusal(path)), example_keys=[])
        return out
    obj = M._safe_load(path, "weights file")
    if isinstance(obj, dict) and obj.get("format") == M.CHECKPOINT_FORMAT:
        meta = obj.get("meta", {})
        out.update(
            layout="shortcut-psd-checkpoint",
            arch=meta.get("arch"),
            n_tensors=len(obj.get("state_dict", {})),
            example_keys=sorted(obj.get("state_dict", {}))[:5],
            preprocessing=meta.get("preprocessing"),
        )
        try:
            M.load_checkpoint(path)
            out.update(loads=True, reason="a shortcut-psd checkpoint (init kind 'source' or gradient-psd)")
        except ModelError as exc:
            out.update(loads=False, reason=str(exc))
        return out
    state = M._unwrap_state_dict(obj, path)
    detected = detect_layout(state)
    out["layout"] = layout or detected or "unknown"
    out["n_tensors"] = len(state)
    out["example_keys"] = sorted(state)[:5]
    use = layout or detected or "timm"
    out["arch"] = arch or layout_arch(use, state)
    out["preprocessing"] = layout_preprocessing(use)
    if not out["arch"]:
        out.update(loads=False, reason="architecture unknown: pass --arch (a timm name) to try a load")
        return out
    spec = {"kind": "file", "path": str(path), "layout": use, "arch": out["arch"], "strict": True}
    if out["preprocessing"] is None:
        spec.update(mean=[0.5], std=[0.5])  # only to try the load; the real values are the user's
    in_chans = M.first_conv_in_chans(state)
    if in_chans:
        spec["in_chans"] = in_chans
    try:
        M.build_init(spec, arch=out["arch"], num_classes=2, in_chans_data=int(spec.get("in_chans", 3)))
        out.update(loads=True, reason=f"loads strictly into timm '{out['arch']}' with layout '{use}'")
    except (ModelError, ConfigError) as exc:
        out.update(loads=False, reason=str(exc))
    return out
