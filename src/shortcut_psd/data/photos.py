"""Built-in ``photos`` (natural source): grey crops of the photos bundled with scikit-image, scikit-learn
and matplotlib; label = which photo (instance discrimination).

Each photo is cut into horizontal bands (train on top, then val, then test); a crop lies inside one band,
so no crop overlaps another split. group = ``photo/band``. Every image is loaded from the installed
packages at run time; no copy is committed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from shortcut_psd.data.crops import (
    assemble,
    check_fractions,
    grid_crops,
    keep_mask,
    package_version,
    shrink,
    skimage_sample,
    split_bands,
)
from shortcut_psd.data.image_io import to_grey01
from shortcut_psd.data.store import ImageSet

log = logging.getLogger(__name__)


def _sklearn(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(filename)

    return load


def _grace_hopper() -> np.ndarray:
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as fh, Image.open(fh) as im:
        return np.asarray(im.convert("RGB"))


_SKIMAGE_URL = "https://scikit-image.org/docs/stable/api/skimage.data.html"
#: (class name, loader, package, licence) of every natural photo; the licence text is the package's own.
PHOTO_SOURCES: list[tuple[str, Callable[[], np.ndarray], str, str]] = [
    ("astronaut", skimage_sample("astronaut"), "scikit-image", "public domain (NASA)"),
    ("coffee", skimage_sample("coffee"), "scikit-image", "CC0 (Rachel Michetti)"),
    ("chelsea", skimage_sample("chelsea"), "scikit-image", "CC0 (Stefan van der Walt)"),
    ("rocket", skimage_sample("rocket"), "scikit-image", "public domain (SpaceX)"),
    ("hubble_deep_field", skimage_sample("hubble_deep_field"), "scikit-image", "public domain (NASA)"),
    ("camera", skimage_sample("camera"), "scikit-image", "CC0 (Lav Varshney)"),
    ("coins", skimage_sample("coins"), "scikit-image", "no known copyright restrictions (Brooklyn Museum)"),
    ("moon", skimage_sample("moon"), "scikit-image", "scikit-image sample data (no licence stated)"),
    ("clock", skimage_sample("clock"), "scikit-image", "public domain (Stefan van der Walt)"),
    ("motorcycle", skimage_sample("stereo_motorcycle"), "scikit-image", "Middlebury stereo 2014 (left view)"),
    ("grass", skimage_sample("grass"), "scikit-image", "CC0"),
    ("gravel", skimage_sample("gravel"), "scikit-image", "CC0 (CC0Textures)"),
    ("brick", skimage_sample("brick"), "scikit-image", "CC0 (CC0Textures)"),
    ("china", _sklearn("china.jpg"), "scikit-learn", "CC-BY 2.0 (danielbuechele)"),
    ("flower", _sklearn("flower.jpg"), "scikit-learn", "CC-BY 2.0 (vultilion)"),
    ("grace_hopper", _grace_hopper, "matplotlib", "public domain (U.S. Navy photograph)"),
]


def build_photos(
    image_size: int = 32,
    *,
    downscale: float = 2.0,
    stride: int | None = None,
    crops_per_image: int | None = 400,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    min_std: float = 0.02,
    seed: int = 0,
) -> ImageSet:
    """Grey crops of the photos bundled with scikit-image, scikit-learn and matplotlib.

    Each photo is turned grey, shrunk by ``downscale`` (anti-aliased, so a crop holds more structure;
    less for a small photo, so that its thinnest band still holds two crops) and cut across its longer
    side into bands: the first ``1 - val_fraction - test_fraction`` for train (top or left), the next
    ``val_fraction`` for val, the last ``test_fraction`` for test. Crops of ``image_size`` pixels are
    taken on a grid every ``stride`` pixels (default ``image_size // 2``) inside one band, so no two
    splits share a pixel. Crops with std < ``min_std`` (sky, blank background) are dropped.
    ``crops_per_image`` caps the crops per photo (split between bands in proportion to their
    fractions, a seeded random subset), which keeps the classes roughly balanced; ``None`` keeps all.

    Label = which photo (16 classes where all load). group = ``photo/band``.
    """
    stride = stride or max(1, image_size // 2)
    fractions = check_fractions(val_fraction, test_fraction)
    rng = np.random.default_rng(seed)
    parts: list[tuple[np.ndarray, int, str, str]] = []
    classes: list[str] = []
    sources: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for name, load, package, licence in PHOTO_SOURCES:
        try:
            raw = load()
        except Exception as exc:  # a loader that would need pooch or a download: skip, say why
            log.warning("photos: skipping %s (%s: %s)", name, type(exc).__name__, exc)
            skipped.append({"name": name, "reason": f"{type(exc).__name__}: {exc}"})
            continue
        grey = to_grey01(raw)
        # Never shrink so far that the thinnest band cannot hold two crops side by side.
        thinnest = min(f for f in fractions.values() if f > 0) * max(grey.shape)
        factor = max(1.0, min(downscale, thinnest / (image_size + stride)))
        img = shrink(grey, factor)
        long_axis = int(img.shape[1] > img.shape[0])  # bands run across the longer side
        label = len(classes)
        kept_any = False
        for split, band in split_bands(img.shape[long_axis], fractions).items():
            crops = grid_crops(img, image_size, stride, *((band, None) if long_axis == 0 else (None, band)))
            crops = crops[keep_mask(crops, min_std, None)]
            if crops_per_image is not None:
                cap = math.ceil(crops_per_image * fractions[split])
                if len(crops) > cap:
                    crops = crops[np.sort(rng.choice(len(crops), cap, replace=False))]
            parts.append((crops, label, split, f"{name}/{split}"))
            kept_any |= len(crops) > 0
        if not kept_any:
            skipped.append(
                {"name": name, "reason": f"no crop of {image_size} px after downscale {downscale}"}
            )
            parts = [p for p in parts if p[1] != label]
            continue
        classes.append(name)
        sources.append(
            {
                "name": name,
                "package": package,
                "version": package_version(package),
                "licence": licence,
                "shape": list(np.shape(raw)),
                "downscale": round(factor, 3),
                "bands_along": "rows" if long_axis == 0 else "columns",
            }
        )
    meta = {
        "description": "Grey crops of photos bundled with scikit-image, scikit-learn and matplotlib; "
        "label = which photo (instance discrimination). Splits are bands across the longer side of "
        "each photo (train, then val, then test).",
        "task": "instance discrimination (proxy pre-training task)",
        "sources": sources,
        "skipped": skipped,
        "params": {
            "image_size": image_size,
            "downscale": downscale,
            "stride": stride,
            "crops_per_image": crops_per_image,
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
            "min_std": min_std,
            "seed": seed,
        },
    }
    return assemble("photos", parts, classes, meta)
