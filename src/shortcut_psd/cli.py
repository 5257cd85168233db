"""The ``shortcut-psd`` command: spectral measurements outside the workflow.

Subcommands:

- ``gradient-psd``: radial PSD of a checkpoint's input gradients on a set of images;
- ``artifact-psd``: inject an artifact into images and write the PSD of ``artifacted - clean``;
- ``spectrum``: radial PSD of the images themselves;
- ``kinds``: the registered artifacts and edits with their parameters and defaults;
- ``band-reliance`` and ``heatmap``: the behavioural probes (``shortcut_psd.probes_cli``);
- ``inspect-weights``: which layout a weights file has, its architecture, and whether it loads (read with
  ``torch.load(weights_only=True)`` only: no code from the file runs). Exit status 1 when it does not load.

Images come from a prepared ``data.npz`` (``--split`` picks a split), an NPZ with an ``images`` array (and
optionally ``labels``) or in the MedMNIST layout (``test_images``, ``test_labels``, ...), or a folder of
image files (subfolders, if any, are the classes, as in ImageFolder), read by
:mod:`shortcut_psd.cli_inputs` (:func:`load_images` and :func:`parse_params`, re-exported here). Every output
is written atomically; ``--out x.npz`` also writes ``x.json``. Errors of the project's kinds print their
message and exit with 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from shortcut_psd.cli_inputs import load_images, parse_params
from shortcut_psd.errors import DataError, ModelError, ShortcutPSDError

WINDOW_CHOICES = ("hann", "tukey", "none")


# -- outputs ---------------------------------------------------------------------------------------------


def plot_psd(result, path: str | Path, title: str = "") -> None:
    """Mean curve with its 95 % CI (log power) beside the mean 2-D spectrum (log10), saved atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from shortcut_psd.io import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    ax = axes[0]
    ax.plot(result.freqs, result.mean, color="C0")
    ax.fill_between(result.freqs, np.maximum(result.ci_lo, 0), result.ci_hi, color="C0", alpha=0.3, lw=0)
    if (result.mean > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel("spatial frequency (cycles/pixel)")
    ax.set_ylabel(f"{result.options.get('spectrum', 'power')} ({result.options.get('normalise', '')})")
    ax.set_title(title or f"radial PSD, n = {result.n}")
    ax = axes[1]
    if result.spectrum_2d.size:
        s = result.spectrum_2d
        h, w = s.shape
        extent = (-(w // 2) / w, (w - 1 - w // 2) / w, (h - 1 - h // 2) / h, -(h // 2) / h)
        im = ax.imshow(np.log10(np.maximum(s, s[s > 0].min() if (s > 0).any() else 1e-30)), extent=extent)
        fig.colorbar(im, ax=ax, label="log10")
        ax.set_xlabel("fx (cycles/pixel)")
        ax.set_ylabel("fy (cycles/pixel)")
        ax.set_title("mean 2-D spectrum")
    else:
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, [path], dpi=120)
    plt.close(fig)


def _finish(result, args, title: str) -> None:
    result.save(args.out)
    if args.plot:
        plot_psd(result, args.plot, title)
    sc = result.scalars
    print(
        f"{title}: n={result.n}, centroid {sc['centroid_cpp']:.4f} cycles/pixel, "
        f"low/mid/high {sc['frac_low']:.3f}/{sc['frac_mid']:.3f}/{sc['frac_high']:.3f} -> {args.out}"
    )


def _spectrum_options(args) -> dict[str, Any]:
    """The spectrum options of ``_add_spectral``'s flags, under the names of :func:`gradient_psd` and of the
    config's ``psd`` section alike."""
    return {
        "window": args.window,
        "tukey_alpha": args.tukey_alpha,
        "spectrum": args.spectrum,
        "channels": args.channels,
        "normalise": args.normalise,
        "include_corners": args.include_corners,
    }


def _spectral_kwargs(args) -> dict[str, Any]:
    return {
        **_spectrum_options(args),
        "bands": tuple(args.bands),
        "batch_size": args.batch_size,
        "device": args.device,
        "progress": args.progress,
    }


def _checkpoint(args):
    """``(model, preprocessing, device)`` of ``--checkpoint``, loaded on ``--device`` (``auto``: cuda when
    present); a checkpoint whose meta has no preprocessing is refused. Shared with
    :mod:`shortcut_psd.probes_cli`."""
    from shortcut_psd.gradients import resolve_device
    from shortcut_psd.models import Preprocessing, load_checkpoint

    device = resolve_device(args.device)
    model, meta = load_checkpoint(args.checkpoint, device)
    pre_spec = (meta or {}).get("preprocessing")
    if not pre_spec:
        raise ModelError(f"checkpoint {args.checkpoint} has no 'preprocessing' in its meta; re-save it")
    return model, Preprocessing(**pre_spec), device


# -- commands --------------------------------------------------------------------------------------------


def cmd_gradient_psd(args) -> None:
    from shortcut_psd.gradients import gradient_psd

    try:
        import shortcut_psd.models  # noqa: F401  (before the images are read: say at once what is missing)
    except ImportError as exc:
        raise ModelError(f"gradient-psd needs shortcut_psd.models, which cannot be imported: {exc}") from exc
    images, labels = load_images(args.images, split=args.split, labels=args.labels, limit=args.limit)
    if labels is None:
        raise DataError(
            f"no labels found with {args.images}; the gradient of the loss needs them: pass --labels FILE "
            "(.npy or one integer per line), or use a data.npz / ImageFolder tree that carries labels"
        )
    model, preprocess, device = _checkpoint(args)
    kwargs = _spectral_kwargs(args)
    kwargs["device"] = device
    amp = {"none": False, "bf16": "bf16", "fp16": "fp16"}[args.amp]
    result = gradient_psd([model], images, labels, preprocess, amp=amp, **kwargs)
    result.options["checkpoint"] = str(args.checkpoint)
    result.options["images"] = str(args.images)
    _finish(result, args, f"gradient PSD of {Path(args.checkpoint).name}")


def cmd_dynamics(args) -> None:
    """Learning order of a sequence of checkpoints (docs/DEFINITIONS.md, "Learning order")."""
    from shortcut_psd import dynamics
    from shortcut_psd.gradients import resolve_device
    from shortcut_psd.io import save_npz

    images, labels = load_images(args.images, split=args.split, labels=args.labels, limit=args.limit)
    if labels is None:
        raise DataError(f"no labels found with {args.images}; pass --labels FILE")
    psd = {
        "batch_size": args.batch_size,
        **_spectrum_options(args),
        "bands_cpp": list(args.bands),
        "recipe": args.recipe,
    }
    arrays = dynamics.checkpoint_sequence(
        args.checkpoints, images, labels, psd, steps=args.steps, device=resolve_device(args.device)
    )
    save_npz(args.out, **arrays)
    sc = dynamics.model_scalars(arrays, gap_threshold=0.1, auc_threshold=0.1)
    onsets = ", ".join(f"{b} {sc[f'onset_{b}']:g}" for b in dynamics.BANDS)
    print(f"{len(arrays['steps'])} checkpoints (recipe {args.recipe}): band onsets {onsets} -> {args.out}")


def cmd_artifact_psd(args) -> None:
    from shortcut_psd.artifacts import apply_artifact
    from shortcut_psd.gradients import artifact_psd
    from shortcut_psd.io import save_npz

    images, _ = load_images(args.images, split=args.split, labels=None, limit=args.limit)
    params = parse_params(args.param)
    clean, artifacted = apply_artifact(args.kind, images, seed=args.seed, **params)
    if args.save_images:
        save_npz(args.save_images, clean=clean, artifacted=artifacted)
    result = artifact_psd(clean, artifacted, **_spectral_kwargs(args))
    result.options.update({"artifact": args.kind, "params": params, "seed": args.seed})
    _finish(result, args, f"artifact PSD of {args.kind}")


def cmd_spectrum(args) -> None:
    from shortcut_psd.gradients import image_psd

    images, _ = load_images(args.images, split=args.split, labels=None, limit=args.limit)
    result = image_psd(images, detrend=args.detrend, **_spectral_kwargs(args))
    result.options["images"] = str(args.images)
    _finish(result, args, f"image spectrum of {Path(args.images).name}")


def cmd_kinds(args) -> None:
    from shortcut_psd.artifacts import artifact_defaults, artifact_kinds, describe_artifact
    from shortcut_psd.edits import describe_edit, edit_defaults, edit_kinds

    for title, kinds, defaults, describe in (
        ("artifacts", artifact_kinds(), artifact_defaults, describe_artifact),
        ("edits", edit_kinds(), edit_defaults, describe_edit),
    ):
        print(f"{title}:")
        for k in kinds:
            params = ", ".join(f"{n}={v!r}" for n, v in defaults(k).items())
            print(f"  {k}({params})")
            if args.describe:
                print("    " + describe(k).replace("\n", "\n    "))


def cmd_inspect_weights(args) -> int:
    from shortcut_psd.weights import inspect_weights

    res = inspect_weights(args.file, arch=args.arch, layout=args.layout)
    if args.json:
        print(json.dumps(res, indent=2, default=str))
    else:
        pre = res.get("preprocessing")
        print(f"file: {res['path']}")
        print(f"layout: {res['layout']}")
        print(f"architecture: {res.get('arch') or 'unknown'}")
        print(f"tensors: {res['n_tensors']} (e.g. {', '.join(res.get('example_keys', [])[:3])})")
        if pre:
            print(f"preprocessing: {pre}")
        print(f"loads: {'yes' if res['loads'] else 'no'}: {res['reason']}")
        if res["loads"] and res["layout"] in ("radimagenet", "torchvision"):
            print(f"config: {{kind: file, path: {res['path']}, layout: {res['layout']}}}")
    return 0 if res["loads"] else 1


# -- parser ----------------------------------------------------------------------------------------------


def _add_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", required=True, help="data.npz, an npz with 'images', or a folder of images")
    p.add_argument("--split", default=None, help="split of a data.npz (train/val/test) or MedMNIST prefix")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--out", required=True, help="output .npz (a sibling .json is written too)")
    p.add_argument("--plot", default=None, help="optional figure (.png/.pdf) of the curve and 2-D spectrum")


def _add_spectral(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("spectrum options (see shortcut_psd.spectral)")
    # spectral.WINDOWS, written out so that --help does not import torch (tests/test_cli.py checks they agree)
    g.add_argument("--window", choices=WINDOW_CHOICES, default="hann")
    g.add_argument("--tukey-alpha", type=float, default=0.5, help="taper fraction of the tukey window (0-1)")
    g.add_argument("--spectrum", choices=("power", "amplitude"), default="power")
    g.add_argument("--channels", choices=("mean", "sum_power"), default="mean")
    g.add_argument("--normalise", choices=("sum", "minmax", "none"), default="sum")
    g.add_argument("--include-corners", action="store_true", help="keep bins beyond Nyquist (corners)")
    g.add_argument("--bands", type=float, nargs=2, default=(0.1, 0.25), metavar=("LOW_MID", "MID_HIGH"))
    g.add_argument("--batch-size", type=int, default=128)
    g.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda, cuda:1, ...")
    g.add_argument("--progress", action="store_true", help="show a progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shortcut-psd", description="Frequency learning priorities and frequency shortcuts."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("gradient-psd", help="radial PSD of a checkpoint's input gradients")
    p.add_argument("--checkpoint", required=True, help="model.pt written by shortcut_psd.models")
    p.add_argument("--labels", default=None, help=".npy or text file with one integer label per image")
    p.add_argument(
        "--amp", choices=("none", "bf16", "fp16"), default="none", help="autocast forward/backward"
    )
    _add_inputs(p)
    _add_spectral(p)
    p.set_defaults(func=cmd_gradient_psd)

    p = sub.add_parser("dynamics", help="learning order: gradient PSD of a sequence of checkpoints")
    p.add_argument("--checkpoints", nargs="+", required=True, help="model.pt files, in training order")
    p.add_argument(
        "--steps", type=int, nargs="+", default=None, help="step of each checkpoint (default 0, 1, ...)"
    )
    p.add_argument("--labels", default=None, help=".npy or text file with one integer label per image")
    p.add_argument("--recipe", choices=("default", "freqbias", "fsr"), default="default", help="psd.recipe")
    _add_inputs(p)
    _add_spectral(p)
    p.set_defaults(func=cmd_dynamics)

    p = sub.add_parser("artifact-psd", help="radial PSD of an artifact (artifacted - clean)")
    p.add_argument("--kind", required=True, help="artifact name (see 'shortcut-psd kinds')")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="artifact parameter (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-images", default=None, help="also write clean and artifacted images (.npz)")
    _add_inputs(p)
    _add_spectral(p)
    p.set_defaults(func=cmd_artifact_psd)

    p = sub.add_parser("spectrum", help="radial PSD of the images themselves")
    p.add_argument("--detrend", choices=("mean", "none"), default="mean", help="remove each image's mean")
    _add_inputs(p)
    _add_spectral(p)
    p.set_defaults(func=cmd_spectrum)

    p = sub.add_parser("kinds", help="list artifacts and edits with their parameters")
    p.add_argument("--describe", action="store_true", help="print each one's documentation")
    p.set_defaults(func=cmd_kinds)

    p = sub.add_parser(
        "inspect-weights",
        help="which layout a weights file has, its architecture, and whether it loads (runs no code from it)",
    )
    p.add_argument("file", help="a state dict (.pt/.pth), a shortcut-psd checkpoint, or a Keras .h5")
    p.add_argument("--arch", default=None, help="timm architecture to try (default: implied by the layout)")
    p.add_argument(
        "--layout", default=None, choices=("timm", "torchvision", "radimagenet"), help="default: detected"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_inspect_weights)

    from shortcut_psd.probes_cli import add_probe_parsers  # band-reliance, heatmap

    add_probe_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = args.func(args)
    except ShortcutPSDError as exc:
        print(f"shortcut-psd {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
