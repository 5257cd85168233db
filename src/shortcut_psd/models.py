"""Models and their input preprocessing: the architecture record, timm model creation, the device.

Any timm architecture is created by name (:func:`create_model`, always ``pretrained=False`` unless an
init asks for hub weights). Every model travels with one :class:`Preprocessing` that maps images in
``[0, 1]`` to what the network sees (grey-to-RGB replication, then ``(x - mean) / std``). Input-gradient
spectra depend on that scaling, so the same object is used in training, evaluation and PSD extraction,
and it is stored inside every checkpoint.

Architecture record: :class:`Arch` (timm name, every kwarg, ``in_chans``, ``num_classes``) is what every
model is built from (:func:`init_arch` decides which kwargs an init uses); a model built here carries its
record, and :func:`save_checkpoint` stores that record, so a reload rebuilds exactly the trained model.
``Arch``, ``Preprocessing`` and ``init_arch`` are torch-free and live in :mod:`shortcut_psd.model_records`
(the config check uses them without importing torch); they are re-exported here.

The inits fine-tuning starts from (:func:`build_init`) are in :mod:`shortcut_psd.inits`, checkpoints
(:func:`save_checkpoint` / :func:`load_checkpoint`) in :mod:`shortcut_psd.checkpoints`; both are
re-exported here, so ``from shortcut_psd.models import build_init, load_checkpoint`` keeps working.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

import timm  # noqa: F401 - every user of this module builds models: import it with the job's set-up
import torch
from torch import Tensor, nn

from shortcut_psd.errors import ConfigError, ModelError
from shortcut_psd.model_records import (  # noqa: F401 - re-exported: the records live in model_records
    _RESERVED_KWARGS,
    ARCH_ATTR,
    Arch,
    Preprocessing,
    _per_channel,
    _plain,
    _suggest,
    check_arch,
    init_arch,
    model_arch,
)

log = logging.getLogger(__name__)


def arch_of(model: nn.Module) -> Arch | None:
    """The record a model was built with, with its current ``num_classes`` and ``in_chans`` (a reset head
    changes them), or None for a model not built here."""
    record = getattr(model, ARCH_ATTR, None)
    if record is None:
        return None
    return record.replace(
        num_classes=int(getattr(model, "num_classes", record.num_classes)), in_chans=model_in_chans(model)
    )


def create_model(
    arch: str | Arch, *, num_classes: int | None = None, in_chans: int | None = None, **kwargs: Any
) -> nn.Module:
    """A timm model with random weights (``pretrained=False``; never touches the network).

    ``arch`` is an :class:`Arch`, or a timm name with ``num_classes``, ``in_chans`` and its kwargs.
    """
    if isinstance(arch, Arch):
        if kwargs or num_classes is not None or in_chans is not None:
            raise ModelError("create_model(Arch): the record already holds num_classes, in_chans and kwargs")
        return arch.create()
    kwargs.pop("pretrained", None)
    if num_classes is None or in_chans is None:
        raise ModelError(f"create_model('{arch}') needs num_classes and in_chans")
    return Arch(arch, in_chans, num_classes, kwargs).create()


def classifier_prefix(model: nn.Module) -> str:
    """State-dict key prefix of the model's classification head (for example ``fc`` or ``head.fc``)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    name = cfg.get("classifier")
    if isinstance(name, (list, tuple)):
        name = name[0]
    if not name:
        raise ModelError(f"model {type(model).__name__} does not declare its classifier; use a timm model")
    return str(name)


def model_in_chans(model: nn.Module) -> int:
    """Number of input channels of a timm model, read from its first convolution/projection."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    first = cfg.get("first_conv")
    if isinstance(first, (list, tuple)):
        first = first[0]
    if first:
        try:
            return int(model.get_submodule(first).weight.shape[1])
        except (AttributeError, IndexError):
            pass
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return int(m.in_channels)
    raise ModelError(f"cannot tell the input channels of {type(model).__name__}")


def first_conv_in_chans(state: Mapping[str, Tensor]) -> int | None:
    """Input channels of the first 4-D weight of a state dict (its first convolution), or None."""
    for v in state.values():
        if isinstance(v, Tensor) and v.ndim == 4:
            return int(v.shape[1])
    return None


def pick_device(requested: str | torch.device = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; an explicit ``cuda`` without a GPU fails."""
    if isinstance(requested, torch.device):
        requested = str(requested)
    if requested in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(requested)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device '{requested}' was requested but no CUDA GPU is visible; use device 'auto' or 'cpu'"
        )
    return dev


# -- heads --------------------------------------------------------------------------------------------
def with_fresh_head(model: nn.Module, num_classes: int, seed: int) -> nn.Module:
    """A deep copy of ``model`` whose classifier is re-initialised under ``torch.manual_seed(seed)``.

    The global torch RNG is left as it was. Used for the K head seeds of a headless pre-trained backbone.
    """
    new = copy.deepcopy(model)
    ref = next(new.parameters())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        new.reset_classifier(num_classes)
    new.to(device=ref.device, dtype=ref.dtype)
    new.train(model.training)
    return new


# -- re-exports: checkpoints and inits live in their own modules (imported last: they import from here)
from shortcut_psd.checkpoints import (  # noqa: E402,F401
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    _safe_load,
    load_checkpoint,
    save_checkpoint,
)
from shortcut_psd.inits import (  # noqa: E402,F401
    INIT_KINDS,
    _few,
    _strip_prefix,
    _timm_weights,
    _unwrap_state_dict,
    build_init,
    load_backbone_weights,
)
