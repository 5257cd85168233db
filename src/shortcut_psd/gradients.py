"""Input gradients of classifiers and their radial power spectrum ("gradient PSD").

Definitions (docs/DEFINITIONS.md, "Gradient PSD"):

- **Input gradient.** ``g = d CE(f(x), y) / d x`` with the model in ``eval()`` mode and ``x`` the image
  exactly as the network sees it, i.e. ``x = preprocess(x01)`` (the init's normalisation, grey-to-RGB
  replication, ...). One backward pass of the *summed* per-image loss gives exact per-image gradients,
  because in eval mode no layer mixes images of a batch (batch norm uses its running statistics).
- **Heads.** A pre-trained backbone is measured with K freshly initialised heads (one model per head);
  :func:`gradient_psd` takes all K models and averages, per image, their normalised curves, so the spread
  is over images and the result is comparable with a fine-tuned model's (K = 1).
- **Channels.** ``mean``: average ``g`` over its channels, then transform (default); ``sum_power``: sum the
  per-channel power spectra.
- **Spectrum, window, radial bins, normalisation**: see :mod:`shortcut_psd.spectral`.
- **Spread over groups.** ``groups`` (one label per image, e.g. the patient or slab an image or patch came
  from) names the independent unit: the result's std and 95 % CI are then over groups (std of the group
  means; percentile cluster bootstrap resampling groups, see :class:`shortcut_psd.spectral.PSDAccumulator`),
  not over images, which overlap and are not independent within a group. Without ``groups`` the spread is
  over images.
- **Window sensitivity.** ``also_windows`` computes, from the same gradients (no extra backward pass), the
  mean curve under other windows too (``PSDResult.window_curves``), so that a conclusion can be checked
  for its dependence on the window.

Everything stays on ``device``: each batch is moved there once, spectra and sums are computed there, and
only the accumulated sums come back to the host at the end. No per-image loop and no vmap.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shortcut_psd.errors import ConfigError, DataError
from shortcut_psd.spectral import (
    NORMALISATIONS,
    TUKEY_ALPHA,
    PSDAccumulator,
    PSDResult,
    RadialSpectrum,
    check_choice,
    normalise_curves,
    normalise_spectra2d,
)

Preprocess = Callable[[torch.Tensor], torch.Tensor]
AMP_MODES = (False, True, "bf16", "fp16")
CHANNELS = ("mean", "sum_power")


def _as_models(models_or_model) -> list[nn.Module]:
    if isinstance(models_or_model, nn.Module):
        return [models_or_model]
    models = list(models_or_model)
    if not models or not all(isinstance(m, nn.Module) for m in models):
        raise ConfigError("expected a torch nn.Module or a non-empty sequence of them")
    return models


def _autocast(device: torch.device, amp) -> contextlib.AbstractContextManager:
    """bf16 autocast for ``amp=True``/"bf16" (CPU and CUDA); fp16 only on CUDA."""
    if amp not in AMP_MODES:
        raise ConfigError(f"amp={amp!r} is not one of {list(AMP_MODES)}")
    if not amp:
        return contextlib.nullcontext()
    if amp == "fp16" and device.type != "cuda":
        raise ConfigError("amp='fp16' needs a CUDA device; use amp='bf16' (or True) on CPU")
    dtype = torch.float16 if amp == "fp16" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextlib.contextmanager
def _eval_mode(models: Sequence[nn.Module]) -> Iterator[None]:
    """Put models in eval mode and restore each one's previous mode afterwards."""
    modes = [m.training for m in models]
    try:
        for m in models:
            m.eval()
        yield
    finally:
        for m, mode in zip(models, modes, strict=True):
            m.train(mode)


# fp16 gradients of small losses underflow; a fixed loss scale (as in AMP's GradScaler) avoids that and is
# undone exactly (power of two) on the float32 gradient.
_FP16_LOSS_SCALE = 2.0**12


def _grad_one(model: nn.Module, xp: torch.Tensor, y: torch.Tensor, amp) -> torch.Tensor:
    with _autocast(xp.device, amp):
        logits = model(xp)
    loss = F.cross_entropy(logits.float(), y, reduction="sum")
    scale = _FP16_LOSS_SCALE if amp == "fp16" else 1.0
    (g,) = torch.autograd.grad(loss * scale, xp)
    return g.float() / scale if scale != 1.0 else g


def input_gradients(
    models_or_model, x01: torch.Tensor, y: torch.Tensor, preprocess: Preprocess, *, amp=False
) -> torch.Tensor:
    """Gradient of the summed cross-entropy wrt the *preprocessed* input.

    ``x01`` (B, C, H, W) images in [0, 1]; ``y`` (B,) int labels; ``preprocess`` any callable mapping
    ``x01`` to the network's input (B, C', H, W). Models are put in ``eval()`` for the call and restored
    after; only the input gradient is computed (no parameter ``.grad`` is touched). Returns
    (B, C', H, W) for one model, (K, B, C', H, W) for a sequence of K models.
    """
    models = _as_models(models_or_model)
    y = torch.as_tensor(y, device=x01.device).long()
    with torch.enable_grad(), _eval_mode(models):
        xp = preprocess(x01).detach().requires_grad_(True)
        grads = [_grad_one(m, xp, y, amp) for m in models]
    if isinstance(models_or_model, nn.Module):
        return grads[0]
    return torch.stack(grads)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when present, else ``cpu``; anything else as given."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _check_images(images, name: str = "images") -> np.ndarray:
    arr = np.asarray(images)
    if arr.ndim != 4:
        raise DataError(f"{name} must be (N, C, H, W); got shape {arr.shape}")
    if len(arr) == 0:
        raise DataError(f"{name} is empty; nothing to measure")
    return arr


def _group_index(groups, n: int, device: torch.device) -> tuple[list[str] | None, torch.Tensor | None]:
    """``groups`` (n,) labels -> (sorted unique labels as str, (n,) index of each image's label on
    ``device``), or (None, None) without groups."""
    if groups is None:
        return None, None
    arr = np.asarray(groups)
    if arr.shape != (n,):
        raise DataError(f"groups must be ({n},), one label per image in the images' order; got {arr.shape}")
    names, index = np.unique(arr.astype(str), return_inverse=True)
    return [str(g) for g in names], torch.from_numpy(index.reshape(-1).astype(np.int64)).to(device)


def _window_spectra(rs: RadialSpectrum, acc: PSDAccumulator) -> dict[str, RadialSpectrum]:
    """One RadialSpectrum per extra window of ``acc``, sharing everything else with ``rs``."""
    return {w: rs.with_window(w) for w in acc.extra_windows}


def _spectrum_setup(
    images: np.ndarray,
    groups,
    device: str | torch.device,
    channels: str,
    normalise: str,
    window: str,
    spectrum: str,
    include_corners: bool,
    detrend: str,
    tukey_alpha: float,
) -> tuple[torch.device, list[str] | None, torch.Tensor | None, RadialSpectrum]:
    """What :func:`gradient_psd` and :func:`image_psd` share before their loops: ``channels`` and
    ``normalise`` checked, the device resolved, the images' groups indexed on it (:func:`_group_index`) and
    the :class:`RadialSpectrum` of the images' size built there. Returns ``(device, group_names,
    group_index, spectrum)``."""
    check_choice("channels", channels, CHANNELS)
    check_choice("normalise", normalise, NORMALISATIONS)
    dev = resolve_device(device)
    group_names, group_index = _group_index(groups, len(images), dev)
    H, W = images.shape[-2:]
    rs = RadialSpectrum(
        H,
        W,
        window=window,
        spectrum=spectrum,
        include_corners=include_corners,
        detrend=detrend,
        tukey_alpha=tukey_alpha,
        device=dev,
    )
    return dev, group_names, group_index, rs


def _batches(images: np.ndarray, batch_size: int, device: torch.device, progress: bool, desc: str):
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1; got {batch_size}")
    starts = range(0, len(images), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc, unit="batch")
    pin = device.type == "cuda"
    for s in starts:
        chunk = torch.from_numpy(np.ascontiguousarray(images[s : s + batch_size], dtype=np.float32))
        if pin:
            chunk = chunk.pin_memory()
        yield s, chunk.to(device, non_blocking=pin)


def gradient_psd(
    models: Sequence[nn.Module] | nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    preprocess: Preprocess,
    *,
    batch_size: int = 128,
    device: str | torch.device = "cpu",
    amp=False,
    window: str = "hann",
    spectrum: str = "power",
    channels: str = "mean",
    normalise: str = "sum",
    include_corners: bool = False,
    detrend: str = "none",
    tukey_alpha: float = TUKEY_ALPHA,
    bands: Sequence[float] = (0.1, 0.25),
    progress: bool = False,
    channels_last: bool = False,
    groups: np.ndarray | Sequence | None = None,
    also_windows: Sequence[str] = (),
    ci_seed: int = 0,
) -> PSDResult:
    """Radial PSD of the input gradients of ``models`` on ``images`` (N, C, H, W) in [0, 1].

    For each image and model: input gradient (see :func:`input_gradients`), channel reduction, spectrum,
    radial average, per-curve normalisation; then the K models' curves (and 2-D spectra) of that image are
    averaged, and images are accumulated into mean, std and 95 % CI over images. Models are moved to
    ``device`` (in place) and their train/eval mode is restored afterwards. ``amp`` (True/"bf16"/"fp16")
    runs forward and backward under autocast; the spectrum is always float32. ``channels_last`` converts
    the models (in place) and each input batch to the channels-last memory format; it changes results only
    by rounding. It is off by default because it did not pay for input gradients: on an H100 with bf16,
    ResNet-50 at 224 px ran at 3.0k img/s with it and 3.8k without, ResNet-18 the same either way
    (benchmarks/README.md).

    ``tukey_alpha`` shapes the ``tukey`` window (see :mod:`shortcut_psd.spectral`). ``groups`` (N,): the
    independent unit of each image (patient, slab), in the images' order; with it the result's spread is
    over groups (``spread_over="groups"``: ``std`` of the group mean curves, 95 % CI by a percentile
    cluster bootstrap that resamples groups with replacement, 2000 replicates seeded by ``ci_seed``; NaN
    with a single group) and it carries ``group_curves``, ``group_n``, ``group_names``. Without it the
    spread is over images as before. ``also_windows``: further windows (of ``spectral.WINDOWS``) whose
    normalised mean curves are computed from the same gradients (no extra backward pass) and stored, with
    the main window's, in ``window_curves``.
    """
    models = _as_models(models)
    images = _check_images(images)
    labels = np.asarray(labels).astype(np.int64)
    if labels.shape != (len(images),):
        raise DataError(f"labels must be ({len(images)},) like the images; got {labels.shape}")
    dev, group_names, group_index, rs = _spectrum_setup(
        images, groups, device, channels, normalise, window, spectrum, include_corners, detrend, tukey_alpha
    )
    H, W = images.shape[-2:]
    acc = rs.accumulator(
        bands=bands,
        options={
            "kind": "gradient",
            "normalise": normalise,
            "channels": channels,
            "n_models": len(models),
            "amp": amp if isinstance(amp, str) else bool(amp),
            "gradient": "d sum CE / d preprocessed input, eval mode",
        },
        group_names=group_names,
        extra_windows=also_windows,
        ci_seed=ci_seed,
    )
    others = _window_spectra(rs, acc)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for m in models:
        m.to(dev)
        if channels_last:
            m.to(memory_format=fmt)
    y_all = torch.from_numpy(labels).to(dev)
    with torch.enable_grad(), _eval_mode(models):
        for s, x01 in _batches(images, batch_size, dev, progress, "gradient PSD"):
            y = y_all[s : s + len(x01)]
            xp = preprocess(x01).detach().contiguous(memory_format=fmt).requires_grad_(True)
            curves = torch.zeros(len(x01), rs.n_bins, device=dev)
            spec2d = torch.zeros(len(x01), H, W // 2 + 1, device=dev)
            wcurves = {w: torch.zeros(len(x01), rs.n_bins, device=dev) for w in others}
            for m in models:
                g = _grad_one(m, xp, y, amp).float()
                c, s2 = rs.from_channels(g, channels)
                curves += normalise_curves(c, normalise)
                spec2d += normalise_spectra2d(s2, normalise, rs.col_weights)
                for w, rw in others.items():
                    wcurves[w] += normalise_curves(rw.from_channels(g, channels)[0], normalise)
            acc.update(
                curves / len(models),
                spec2d / len(models),
                group_index=None if group_index is None else group_index[s : s + len(x01)],
                window_curves={w: v / len(models) for w, v in wcurves.items()},
            )
    return acc.result()


def image_psd(
    images: np.ndarray,
    *,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    window: str = "hann",
    spectrum: str = "power",
    channels: str = "mean",
    normalise: str = "sum",
    include_corners: bool = False,
    detrend: str = "mean",
    tukey_alpha: float = TUKEY_ALPHA,
    bands: Sequence[float] = (0.1, 0.25),
    progress: bool = False,
    kind: str = "image",
    groups: np.ndarray | Sequence | None = None,
    also_windows: Sequence[str] = (),
    ci_seed: int = 0,
) -> PSDResult:
    """Radial PSD of the images (N, C, H, W) themselves, e.g. a source data set's spectrum.

    Same definitions as :func:`gradient_psd` with the image in place of the gradient, including
    ``channels``, ``tukey_alpha``, ``groups`` (spread over groups by a cluster bootstrap), ``also_windows``
    (``window_curves``) and ``ci_seed``. ``detrend="mean"`` (default here) removes each image's mean
    brightness first so the zero-frequency bin does not dwarf the rest; pass ``"none"`` to keep it.
    """
    images = _check_images(images)
    dev, group_names, group_index, rs = _spectrum_setup(
        images, groups, device, channels, normalise, window, spectrum, include_corners, detrend, tukey_alpha
    )
    acc = rs.accumulator(
        bands=bands,
        options={"kind": kind, "normalise": normalise, "channels": channels},
        group_names=group_names,
        extra_windows=also_windows,
        ci_seed=ci_seed,
    )
    others = _window_spectra(rs, acc)
    for s, x in _batches(images, batch_size, dev, progress, f"{kind} PSD"):
        c, s2 = rs.from_channels(x, channels)
        acc.update(
            normalise_curves(c, normalise),
            normalise_spectra2d(s2, normalise, rs.col_weights),
            group_index=None if group_index is None else group_index[s : s + len(x)],
            window_curves={
                w: normalise_curves(rw.from_channels(x, channels)[0], normalise) for w, rw in others.items()
            },
        )
    return acc.result()


def artifact_psd(clean: np.ndarray, artifacted: np.ndarray, *, detrend: str = "none", **kwargs) -> PSDResult:
    """Radial PSD of the difference ``artifacted - clean`` (docs/DEFINITIONS.md, "Artifact PSD"), with the same
    options as :func:`gradient_psd` (keyword arguments of :func:`image_psd`: ``window``, ``tukey_alpha``,
    ``spectrum``, ``channels``, ``normalise``, ``groups``, ``also_windows``, ``ci_seed``, ...; no
    detrending by default, as for gradients), so that it is directly comparable with a gradient PSD."""
    clean = _check_images(clean, "clean")
    artifacted = _check_images(artifacted, "artifacted")
    if clean.shape != artifacted.shape:
        raise DataError(f"clean {clean.shape} and artifacted {artifacted.shape} images differ in shape")
    diff = artifacted.astype(np.float32) - clean.astype(np.float32)
    return image_psd(diff, detrend=detrend, kind="artifact", **kwargs)
