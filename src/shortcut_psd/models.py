"""Models, their input preprocessing, the inits fine-tuning starts from, and checkpoints.

Any timm architecture is created by name (:func:`create_model`, always ``pretrained=False`` unless an
init asks for hub weights). Every model travels with one :class:`Preprocessing` that maps images in
``[0, 1]`` to what the network sees (grey-to-RGB replication, then ``(x - mean) / std``). Input-gradient
spectra depend on that scaling, so the same object is used in training, evaluation and PSD extraction,
and it is stored inside every checkpoint.

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

Architecture record: :class:`Arch` (timm name, every kwarg, ``in_chans``, ``num_classes``) is what every
model is built from (:func:`init_arch` decides which kwargs an init uses); a model built here carries its
record, and :func:`save_checkpoint` stores that record, so a reload rebuilds exactly the trained model.

Checkpoints (:func:`save_checkpoint` / :func:`load_checkpoint`) hold only tensors and plain Python
types, so they are always read with ``torch.load(weights_only=True)``: a file that would run code when
unpickled is refused.
"""

from __future__ import annotations

import copy
import difflib
import io
import logging
import os
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
from torch import Tensor, nn

from shortcut_psd.errors import ConfigError, ModelError
from shortcut_psd.io import atomic_path

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "shortcut-psd-checkpoint"
CHECKPOINT_VERSION = 1
INIT_KINDS = ("scratch", "source", "timm", "file")


# -- architectures ------------------------------------------------------------------------------------
def _suggest(name: str, candidates: Sequence[str], n: int = 5) -> str:
    close = difflib.get_close_matches(name, candidates, n=n, cutoff=0.6)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def check_arch(arch: str) -> None:
    """Raise :class:`ModelError` if timm does not know ``arch`` (a pretrained tag such as ``.a1_in1k`` is allowed)."""
    if not isinstance(arch, str) or not timm.is_model(arch):
        raise ModelError(
            f"unknown timm architecture '{arch}'.{_suggest(str(arch), timm.list_models())} "
            "List the names with `python -c \"import timm; print(timm.list_models('*resnet*'))\"`."
        )


#: attribute under which a model built here carries its :class:`Arch` (survives deepcopy)
ARCH_ATTR = "shortcut_psd_arch"
_RESERVED_KWARGS = ("in_chans", "num_classes", "pretrained", "pretrained_cfg_overlay")


@dataclass(frozen=True, eq=True)
class Arch:
    """The one record of an architecture: timm name, every keyword argument, input channels and classes.

    Every place that builds or rebuilds a model goes through it (:meth:`create`, :func:`create_model`,
    :func:`build_init`, :func:`save_checkpoint`, :func:`load_checkpoint`, the config check), and a model
    built here carries its record (``model.shortcut_psd_arch``), so that a checkpoint stores the options
    the model was really built with, not the config's.
    """

    name: str
    in_chans: int
    num_classes: int
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ModelError(f"an architecture needs a timm model name; got {self.name!r}")
        kwargs = dict(self.kwargs or {})
        clash = sorted(set(kwargs) & set(_RESERVED_KWARGS))
        if clash:
            raise ModelError(
                f"model options {clash} cannot be given as kwargs of '{self.name}': in_chans and "
                "num_classes come from the data and the init, pretrained from the init kind; remove them"
            )
        object.__setattr__(self, "kwargs", _plain(kwargs, "model kwargs"))
        object.__setattr__(self, "in_chans", int(self.in_chans))
        object.__setattr__(self, "num_classes", int(self.num_classes))

    def create(self, *, pretrained: bool = False, **timm_options: Any) -> nn.Module:
        """The timm model (random weights unless ``pretrained``), carrying this record."""
        check_arch(self.name)
        try:
            model = timm.create_model(
                self.name,
                pretrained=pretrained,
                num_classes=self.num_classes,
                in_chans=self.in_chans,
                **timm_options,
                **dict(self.kwargs),
            )
        except TypeError as exc:
            raise ModelError(f"cannot create '{self.name}' with options {dict(self.kwargs)}: {exc}") from exc
        record = self if pretrained is False else self.replace(name=model_arch(model))
        setattr(model, ARCH_ATTR, record)
        return model

    def replace(self, **changes: Any) -> Arch:
        return Arch(**{**self.to_fields(), **changes})

    def to_fields(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in_chans": self.in_chans,
            "num_classes": self.num_classes,
            "kwargs": dict(self.kwargs),
        }

    def to_meta(self) -> dict[str, Any]:
        """The checkpoint meta keys of this record (``arch``, ``model_kwargs``, ``in_chans``, ``num_classes``)."""
        return {
            "arch": self.name,
            "model_kwargs": dict(self.kwargs),
            "in_chans": self.in_chans,
            "num_classes": self.num_classes,
        }

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> Arch:
        return cls(
            meta["arch"], int(meta["in_chans"]), int(meta["num_classes"]), meta.get("model_kwargs") or {}
        )


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


def init_arch(
    spec: Mapping[str, Any],
    *,
    model_arch_name: str | None,
    model_kwargs: Mapping[str, Any] | None,
    in_chans: int,
    num_classes: int,
    file_arch: str | None = None,
) -> Arch | None:
    """The :class:`Arch` an init builds (None for ``source``: its checkpoint holds its own record).

    The one rule for kwargs: an init's own ``kwargs`` if it gives them; else ``model.kwargs`` when the
    init's architecture is ``model.arch`` (a ``timm`` name's architecture, a ``file`` init's ``arch``,
    or the one its layout implies); else none. ``in_chans`` is the data's for ``scratch`` and the init's
    (default 3) for ``timm``/``file``.
    """
    kind = spec.get("kind")
    if kind == "source":
        return None
    if kind == "scratch":
        name = model_arch_name
    elif kind == "timm":
        name = spec.get("name")
    else:
        name = spec.get("arch") or file_arch or model_arch_name
    if not name:
        raise ConfigError(f"init '{kind}' needs an architecture name (arch)")
    if "kwargs" in spec:
        kwargs = dict(spec.get("kwargs") or {})
    else:
        base = str(name).split(".")[0]
        same = model_arch_name is not None and base == str(model_arch_name).split(".")[0]
        kwargs = dict(model_kwargs or {}) if same else {}
    chans = in_chans if kind == "scratch" else int(spec.get("in_chans", 3))
    return Arch(str(name), chans, num_classes, kwargs)


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


def model_arch(model: nn.Module) -> str:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    arch = cfg.get("architecture")
    if not arch:
        raise ModelError(f"model {type(model).__name__} has no timm architecture name; pass meta['arch']")
    return str(arch)


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


# -- preprocessing ------------------------------------------------------------------------------------
def _per_channel(values: Any, n: int, what: str) -> tuple[float, ...]:
    vals = np.atleast_1d(np.asarray(values, dtype=np.float64)).ravel()
    if len(vals) == 1:
        vals = np.repeat(vals, n)
    if len(vals) != n:
        raise ModelError(f"preprocessing {what} has {len(vals)} values for {n} input channels")
    return tuple(float(v) for v in vals)


@dataclass
class Preprocessing:
    """Map images in ``[0, 1]`` to network input: grey->RGB replication, then ``(x - mean) / std``.

    ``mean`` and ``std`` have one value per model input channel, in units of ``[0, 1]`` images.
    """

    in_chans: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    #: ``rgb``, or ``bgr`` for weights trained on OpenCV reads (RadImageNet): RGB channels are reversed
    #: (after grey->RGB replication, so grey images are unaffected); ``mean``/``std`` are in the model's order
    channel_order: str = "rgb"

    def __post_init__(self) -> None:
        self.in_chans = int(self.in_chans)
        if self.channel_order not in ("rgb", "bgr"):
            raise ModelError(
                f"preprocessing channel_order must be 'rgb' or 'bgr'; got {self.channel_order!r}"
            )
        if self.channel_order == "bgr" and self.in_chans != 3:
            raise ModelError("preprocessing channel_order 'bgr' needs 3 input channels")
        self.mean = _per_channel(self.mean, self.in_chans, "mean")
        self.std = _per_channel(self.std, self.in_chans, "std")
        if not all(np.isfinite(self.mean)) or not all(s > 0 and np.isfinite(s) for s in self.std):
            raise ModelError(f"preprocessing needs finite mean and positive std; got {self.mean}, {self.std}")
        if max(abs(m) for m in self.mean) > 1.5 or max(self.std) > 1.5:
            raise ModelError(
                f"preprocessing mean {self.mean} / std {self.std} look like 0-255 values; images are in "
                "[0, 1] here, so divide them by 255"
            )

    def check_channels(self, data_chans: int) -> None:
        """Raise :class:`ModelError` unless images with ``data_chans`` channels can be fed."""
        if data_chans != self.in_chans and not (data_chans == 1 and self.in_chans == 3):
            raise ModelError(
                f"the model takes {self.in_chans} input channels but the images have {data_chans}; only "
                "grey (1) -> RGB (3) replication is automatic. Pick an init with matching in_chans."
            )

    def __call__(self, x01: Tensor) -> Tensor:
        """``(B, C, H, W)`` in ``[0, 1]`` -> ``(B, in_chans, H, W)`` normalised (same device and dtype)."""
        if x01.ndim != 4:
            raise ModelError(f"preprocessing expects (B, C, H, W) images; got shape {tuple(x01.shape)}")
        self.check_channels(int(x01.shape[1]))
        if x01.shape[1] != self.in_chans:
            x01 = x01.expand(-1, self.in_chans, -1, -1)
        elif self.channel_order == "bgr":
            x01 = x01.flip(1)
        mean = torch.as_tensor(self.mean, dtype=x01.dtype, device=x01.device).view(1, -1, 1, 1)
        std = torch.as_tensor(self.std, dtype=x01.dtype, device=x01.device).view(1, -1, 1, 1)
        return (x01 - mean) / std

    def to_dict(self) -> dict[str, Any]:
        d = {"in_chans": self.in_chans, "mean": list(self.mean), "std": list(self.std)}
        if self.channel_order != "rgb":
            d["channel_order"] = self.channel_order
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Preprocessing:
        try:
            return cls(
                in_chans=d["in_chans"],
                mean=d["mean"],
                std=d["std"],
                channel_order=d.get("channel_order", "rgb"),
            )
        except (KeyError, TypeError) as exc:
            raise ModelError(
                f"preprocessing record {dict(d)} is incomplete: needs in_chans, mean, std"
            ) from exc


# -- checkpoints --------------------------------------------------------------------------------------
def _plain(obj: Any, where: str = "meta") -> Any:
    """Convert to types that ``torch.load(weights_only=True)`` accepts; fail on anything else."""
    if isinstance(obj, Preprocessing):
        return obj.to_dict()
    if isinstance(obj, Mapping):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist(), where)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise ModelError(f"checkpoint {where} holds a {type(obj).__name__}; only plain types can be stored")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, meta: Mapping[str, Any]) -> None:
    """Write ``state_dict`` + ``meta`` atomically, loadable with ``weights_only=True``.

    ``meta`` should hold ``preprocessing`` (a :class:`Preprocessing` or its dict) and whatever else the
    caller records (classes, config_hash, init, ...). ``arch``, ``num_classes`` and ``in_chans`` are
    filled from the model when absent; ``model_kwargs`` (optional) are passed to :func:`create_model`
    when loading.
    """
    meta = dict(meta)
    record = arch_of(model)
    if record is not None:  # the options the model was built with, whatever the caller believes
        for key, value in record.to_meta().items():
            if key in meta and _plain(meta[key]) != _plain(value):
                raise ModelError(
                    f"checkpoint meta says {key} = {meta[key]!r} but the model was built with {value!r}; "
                    "leave arch, model_kwargs, in_chans and num_classes out of meta (they come from the model)"
                )
        meta.update(record.to_meta())
    meta.setdefault("arch", model_arch(model))
    meta.setdefault("num_classes", int(getattr(model, "num_classes", 0)))
    meta.setdefault("in_chans", model_in_chans(model))
    if "preprocessing" not in meta:
        raise ModelError("checkpoint meta needs 'preprocessing' (the model's input normalisation)")
    meta = _plain(meta)
    Preprocessing.from_dict(meta["preprocessing"])  # validate before writing
    state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "state_dict": state, "meta": meta}
    # Serialise in memory, then write with Python: torch's own file writer turns a full disk into an
    # opaque RuntimeError ("unexpected pos"); a plain write raises OSError(ENOSPC), which atomic_path
    # reports with the path (and the partial file is removed either way).
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


def _safe_load(path: str | os.PathLike, what: str) -> Any:
    """``torch.load(weights_only=True)`` with errors that name the file and the fix."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{what} {path} does not exist; check the path (or rerun the rule that writes it)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
        # torch's message ends with a generic link; the line that names the refused global is the useful one
        first = next((ln for ln in lines if "Unsupported global" in ln), lines[-1] if lines else "")
        first = first.split(" was not an allowed global")[0]
        raise ModelError(
            f"refused to load {what} {path}: it holds Python objects that safe loading "
            f"(torch.load weights_only=True) does not allow, so unpickling it could run code ({first[:200]}). "
            "If you trust the file, convert it once to a plain state dict: "
            "torch.save(torch.load(p, weights_only=False).state_dict(), 'weights.pt')"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, AttributeError) as exc:
        raise ModelError(
            f"{what} {path} is damaged or not a PyTorch file ({type(exc).__name__}: {str(exc)[:200]}); "
            "delete it and rerun the rule that writes it"
        ) from exc


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a model saved by :func:`save_checkpoint`; returns ``(model in eval mode, meta)``."""
    obj = _safe_load(path, "checkpoint")
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(
            f"{path} is not a shortcut-psd checkpoint (no '{CHECKPOINT_FORMAT}' record); "
            "to start from foreign weights use an init of kind 'file'"
        )
    meta = obj["meta"]
    try:
        model = Arch.from_meta(meta).create()
        model.load_state_dict(obj["state_dict"], strict=True)
    except KeyError as exc:
        raise ModelError(
            f"checkpoint {path} lacks meta key {exc}; it was not written by save_checkpoint"
        ) from exc
    except RuntimeError as exc:
        raise ModelError(f"checkpoint {path} does not match its own architecture record: {exc}") from exc
    return model.to(device).eval(), meta


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


# -- inits --------------------------------------------------------------------------------------------
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
