"""The records a model is built from, torch-free: :class:`Arch` (architecture) and :class:`Preprocessing`.

Both are plain data that a checkpoint stores and the config check needs (which architecture each init
builds: :func:`init_arch`), so they import neither torch nor timm: ``timm`` is imported only when a model
is built (:meth:`Arch.create`) and ``torch`` only when images are preprocessed. The config check of every
``snakemake`` call works out its model list from here without paying torch's and timm's import time.
Everything here is re-exported by :mod:`shortcut_psd.models`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shortcut_psd.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from torch import Tensor, nn


# -- architectures ------------------------------------------------------------------------------------
def _suggest(name: str, candidates: Sequence[str], n: int = 5) -> str:
    close = difflib.get_close_matches(name, candidates, n=n, cutoff=0.6)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def check_arch(arch: str) -> None:
    """Raise :class:`ModelError` if timm does not know ``arch`` (a pretrained tag such as ``.a1_in1k`` is allowed)."""
    import timm

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
        import timm

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


def model_arch(model: nn.Module) -> str:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    arch = cfg.get("architecture")
    if not arch:
        raise ModelError(f"model {type(model).__name__} has no timm architecture name; pass meta['arch']")
    return str(arch)


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
        import torch

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


# -- plain values (what a checkpoint may hold) --------------------------------------------------------
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
