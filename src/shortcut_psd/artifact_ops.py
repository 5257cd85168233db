"""Image operations some artifacts are built on, other than frequency filters (numpy only).

Used by the registered artifacts of :mod:`shortcut_psd.artifacts` (docs/DEFINITIONS.md, "Artifacts"), which
re-exports :data:`GLYPHS` and :func:`tag_mask`: the CT-like sinogram round trip of ``photon_noise`` with
``domain="sinogram"`` (:func:`photon_noise_sinogram`; skimage is imported only when it runs) and the glyph
mask the ``tag`` artifact draws (:func:`tag_mask`). The frequency filters are in
:mod:`shortcut_psd.freqgrid`. No torch here: ``import shortcut_psd.artifacts`` stays cheap.
"""

from __future__ import annotations

import numpy as np

from shortcut_psd.errors import DataError

# 5 x 7 pixel glyphs (1 = ink), drawn by the ``tag`` artifact.
GLYPHS: dict[str, np.ndarray] = {
    name: np.array([[c == "#" for c in row] for row in rows], dtype=bool)
    for name, rows in {
        "R": ["####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"],
        "L": ["#....", "#....", "#....", "#....", "#....", "#....", "#####"],
        "square": ["#####", "#####", "#####", "#####", "#####", "#####", "#####"],
    }.items()
}


def photon_noise_sinogram(x, rng, dose, fraction, n_angles, path_attenuation):
    """``(clean, artifacted)`` of ``photon_noise`` with ``domain="sinogram"`` (float64 images ``x`` in,
    float32 out): the CT round trip its docstring describes (radon, Poisson counts, thinning, iradon)."""
    from skimage.transform import iradon, radon

    n, c, h, w = x.shape
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    theta = np.linspace(0.0, 180.0, int(n_angles or side), endpoint=False)
    mu = path_attenuation / side
    clean = np.empty_like(x)
    artifacted = np.empty_like(x)
    # skimage's radon/iradon take one 2-D image at a time; at 32-64 px this loop costs about 5-12 ms per
    # image and channel.
    for i in range(n):
        for ch in range(c):
            square = np.zeros((side, side))
            square[top : top + h, left : left + w] = x[i, ch]
            line = radon(square, theta, circle=False, preserve_range=True)
            expected = dose * np.exp(-mu * line)
            counts = rng.poisson(expected)
            kept = rng.binomial(counts, fraction)
            # A bin with no photon is read as half a photon (the usual guard before the log).
            noisy_full = -np.log(np.maximum(counts, 0.5) / dose) / mu
            noisy_low = -np.log(np.maximum(kept, 0.5) / (fraction * dose)) / mu
            for sino, out in ((noisy_full, clean), (noisy_low, artifacted)):
                noise = iradon(sino - line, theta, output_size=side, filter_name="ramp", circle=False)
                out[i, ch] = x[i, ch] + noise[top : top + h, left : left + w]
    return clean.astype(np.float32), artifacted.astype(np.float32)


def tag_mask(
    height: int, width: int, *, size: int, position: str, margin: int | None, glyph: str
) -> np.ndarray:
    """Boolean (H, W) mask of ``glyph`` scaled (nearest neighbour) to ``size`` px high at ``position``,
    ``margin`` px from the named edges; ``margin=None`` puts it a third of the free space in from them."""
    base = GLYPHS[glyph]
    gh, gw = size, max(1, round(size * base.shape[1] / base.shape[0]))
    rows = np.arange(gh) * base.shape[0] // gh
    cols = np.arange(gw) * base.shape[1] // gw
    mark = base[rows][:, cols]
    my = (height - gh) // 3 if margin is None else margin
    mx = (width - gw) // 3 if margin is None else margin
    if gh + 2 * my > height or gw + 2 * mx > width or gh > height or gw > width:
        raise DataError(
            f"tag: a {gh}x{gw} px mark with margin {margin} does not fit a {height}x{width} image; "
            "lower size or margin"
        )
    top = {"top": my, "bottom": height - my - gh}.get(position.split("-")[0], (height - gh) // 2)
    left = {"left": mx, "right": width - mx - gw}.get(position.split("-")[-1], (width - gw) // 2)
    mask = np.zeros((height, width), dtype=bool)
    mask[top : top + gh, left : left + gw] = mark
    return mask
