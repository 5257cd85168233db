"""Checkpoints: a model's weights with its architecture record and preprocessing, read back safely.

:func:`save_checkpoint` writes ``state_dict`` + ``meta`` (the model's :class:`~shortcut_psd.models.Arch`
record, its :class:`~shortcut_psd.models.Preprocessing`, whatever the caller records) atomically;
:func:`load_checkpoint` rebuilds exactly the trained model from that record.

Checkpoints hold only tensors and plain Python types, so they are always read with
``torch.load(weights_only=True)`` (:func:`_safe_load`, also used for foreign weight files): a file that
would run code when unpickled is refused.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from shortcut_psd.errors import ModelError
from shortcut_psd.io import atomic_path

CHECKPOINT_FORMAT = "shortcut-psd-checkpoint"
CHECKPOINT_VERSION = 1


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


# Imported last so that either module can be imported first: models imports this one at its end.
from shortcut_psd.models import (  # noqa: E402
    Arch,
    Preprocessing,
    _plain,
    arch_of,
    model_arch,
    model_in_chans,
)
