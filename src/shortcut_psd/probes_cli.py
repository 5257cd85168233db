"""``shortcut-psd band-reliance`` and ``shortcut-psd heatmap``: the probes of docs/DEFINITIONS.md, "Probes",
for a user's checkpoint (a ``model.pt`` written by :mod:`shortcut_psd.models`).

Images and labels are read like every other subcommand (:func:`shortcut_psd.cli.load_images`). With
``--linear-probe`` the checkpoint's head is replaced by a linear probe fitted on ``--probe-split`` of the
same ``data.npz`` (seeded by ``--seed``), as the workflow does for an init before fine-tuning. Torch is
imported only when a command runs, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from shortcut_psd.errors import DataError


def _model(args, images_for_probe=None):
    from shortcut_psd import probes
    from shortcut_psd.cli import _checkpoint

    model, prep, device = _checkpoint(args)
    info: dict[str, Any] = {}
    if args.linear_probe:
        from shortcut_psd.cli import load_images

        tx, ty = load_images(args.images, split=args.probe_split, labels=None, limit=None)
        if ty is None:
            raise DataError(f"--linear-probe needs labelled '{args.probe_split}' images in {args.images}")
        model, info = probes.linear_probe(
            model,
            prep,
            tx,
            ty,
            int(ty.max()) + 1,
            seed=args.seed,
            max_images=args.probe_images,
            device=device,
        )
    return model, prep, device, info


def _inputs(args):
    from shortcut_psd.cli import load_images

    images, labels = load_images(args.images, split=args.split, labels=args.labels, limit=args.limit)
    if labels is None:
        raise DataError(
            f"no labels found with {args.images}; the probes score AUC and accuracy: pass --labels FILE "
            "(.npy or one integer per line), or use a data.npz / ImageFolder tree that carries labels"
        )
    return images, labels


def cmd_band_reliance(args) -> None:
    from shortcut_psd import probes
    from shortcut_psd.io import save_npz, write_json

    images, labels = _inputs(args)
    model, prep, device, info = _model(args)
    h, w = images.shape[-2:]
    bands = probes.resolve_bands(args.band or "auto", h, w, args.n_bands)
    res = probes.band_reliance(
        probes.model_scorer(model, prep, device),
        images,
        labels,
        bands,
        n_boot=args.bootstrap,
        seed=args.seed,
        batch_size=args.batch_size,
        device=device,
    )
    save_npz(args.out, **{k: np.asarray(v) for k, v in res.items()})
    summary = {k: v for k, v in res.items() if not k.startswith("rep_")}
    summary.update(checkpoint=str(args.checkpoint), images=str(args.images), linear_probe=info)
    write_json(Path(args.out).with_suffix(".json"), summary)
    print(f"AUC clean {res['auc_clean']:.3f}, accuracy {res['acc_clean']:.3f}")
    for j, (lo, hi) in enumerate(bands):
        print(
            f"  band [{lo:.3f}, {hi:.3f}): removed AUC {res['auc_remove'][j]:.3f} (reliance "
            f"{res['reliance'][j]:+.3f}), kept alone AUC {res['auc_keep'][j]:.3f}, acc {res['acc_keep'][j]:.3f}"
        )
    print(f"-> {args.out}")


def cmd_heatmap(args) -> None:
    from shortcut_psd import probes
    from shortcut_psd.io import save_npz, write_json

    images, labels = _inputs(args)
    model, prep, device, info = _model(args)
    res = probes.fourier_heatmap(
        probes.model_scorer(model, prep, device),
        images,
        labels,
        norm=args.norm,
        step=args.step,
        seed=args.seed,
        batch_size=args.batch_size,
        device=device,
    )
    save_npz(args.out, **{k: np.asarray(v) for k, v in res.items()})
    write_json(
        Path(args.out).with_suffix(".json"),
        {k: res[k] for k in ("metric", "clean", "norm", "step", "n_images")}
        | {"checkpoint": str(args.checkpoint), "linear_probe": info},
    )
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from shortcut_psd.io import save_figure

        m = res["full"]
        h, w = m.shape
        fig, ax = plt.subplots(figsize=(4.2, 3.6))
        vmax = np.nanmax(np.abs(m)) or 1.0
        ext = (-(w // 2) / w, (w - w // 2) / w, (h - h // 2) / h, -(h // 2) / h)
        im = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax, extent=ext)
        fig.colorbar(im, ax=ax, label=res["metric"])
        ax.set_xlabel("fx (cycles/pixel)")
        ax.set_ylabel("fy (cycles/pixel)")
        ax.set_title(f"Fourier heat map, norm {args.norm:g}")
        save_figure(fig, [args.plot], dpi=120)
        plt.close(fig)
    print(
        f"clean {res['metric'].split('_')[0]} {res['clean']:.3f}; max {res['metric']} {np.nanmax(res['heatmap']):.3f}"
    )
    print(f"-> {args.out}")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="model.pt written by shortcut_psd.models")
    p.add_argument("--images", required=True, help="data.npz, an npz with 'images', or a folder of images")
    p.add_argument("--split", default=None, help="split of a data.npz (train/val/test) or MedMNIST prefix")
    p.add_argument("--labels", default=None, help=".npy or text file with one integer label per image")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--out", required=True, help="output .npz (a sibling .json is written too)")
    p.add_argument("--seed", type=int, default=0, help="seed of random signs, bootstrap and linear probe")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda, ...")
    p.add_argument("--linear-probe", action="store_true", help="replace the head by a linear probe first")
    p.add_argument("--probe-split", default="train", help="split of --images the linear probe is fitted on")
    p.add_argument("--probe-images", type=int, default=1000, help="cap on the linear probe's images")


def add_probe_parsers(sub) -> None:
    """Add ``band-reliance`` and ``heatmap`` to the ``shortcut-psd`` subparsers."""
    p = sub.add_parser("band-reliance", help="AUC/accuracy with each radial band removed or kept alone")
    _common(p)
    p.add_argument(
        "--band",
        type=float,
        nargs=2,
        action="append",
        metavar=("LO", "HI"),
        help="a band in cycles/pixel "
        "(repeatable; default: the PSD's radial bins grouped into --n-bands bands)",
    )
    p.add_argument("--n-bands", type=int, default=8)
    p.add_argument("--bootstrap", type=int, default=0, help="resamples of images for AUC replicates")
    p.set_defaults(func=cmd_band_reliance)

    p = sub.add_parser("heatmap", help="Fourier heat map (Yin et al. 2019): AUC drop per basis frequency")
    _common(p)
    p.add_argument("--norm", type=float, default=4.0, help="L2 norm of the added basis image")
    p.add_argument("--step", type=int, default=1, help="every step-th frequency index (1: the half plane)")
    p.add_argument("--plot", default=None, help="optional figure (.png/.pdf), fftshifted full plane")
    p.set_defaults(func=cmd_heatmap)
