"""Built-in ``brain_tissue`` (medical target): patches of nilearn's MNI152 T1 template labelled by the
tissue at the patch's centre voxel (grey vs white matter probability > ``threshold``).

Split by slab of slices with a gap between slabs, so no two splits share tissue; group = a thin slab of
``group_slices`` slices inside a split's slab (default: each sampled slice). Positive class (index 1) =
``white_matter``. The template is loaded from the installed nilearn at run time; no copy is committed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from shortcut_psd.data.crops import assemble, crops_at, grid_starts, package_version
from shortcut_psd.data.store import SPLITS, ImageSet
from shortcut_psd.errors import DataError

_AXES = {"sagittal": 0, "coronal": 1, "axial": 2}
BRAIN_CLASSES = ["grey_matter", "white_matter"]  # positive class (index 1) = white matter


def _mni152() -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """T1, grey- and white-matter probability volumes of nilearn's MNI152 template (1 mm), same grid."""
    from nilearn import datasets

    t1_img = datasets.load_mni152_template(resolution=1)
    gm_img = datasets.load_mni152_gm_template(resolution=1)
    wm_img = datasets.load_mni152_wm_template(resolution=1)
    for label, img in (("grey matter", gm_img), ("white matter", wm_img)):
        if img.shape != t1_img.shape or not np.allclose(img.affine, t1_img.affine):
            raise DataError(f"nilearn's MNI152 {label} template is not on the T1 template's grid")
    info = {"shape": list(t1_img.shape), "affine": np.asarray(t1_img.affine).tolist()}
    return (
        np.asarray(t1_img.get_fdata(dtype=np.float32)),
        np.asarray(gm_img.get_fdata(dtype=np.float32)),
        np.asarray(wm_img.get_fdata(dtype=np.float32)),
        info,
    )


def _slices_first(vol: np.ndarray, axis: str) -> np.ndarray:
    """Volume ``(n_slices, rows, cols)`` for slicing along ``axis``, displayed top = superior/anterior.

    The template's voxel axes are RAS (x right, y anterior, z superior); in each plane the second
    in-plane axis becomes rows, reversed, and the first becomes columns.
    """
    moved = np.moveaxis(vol, _AXES[axis], 0)  # (n, a, b)
    return np.ascontiguousarray(np.swapaxes(moved, 1, 2)[:, ::-1, :])


def _slabs(
    labelled: np.ndarray, order: Sequence[str], widths: Sequence[float], gap: int
) -> list[tuple[str, int, int]]:
    """Consecutive slabs ``(split, first, stop)`` along the slices, ``gap`` slices apart, slab ``i``
    holding about ``widths[i]`` of the labelled patch centres that the slabs keep (``labelled`` counts
    them per slice). Gaps are taken out between slabs, not out of them, so a thin slab survives."""
    nonzero = np.flatnonzero(labelled)
    if len(nonzero) == 0:
        raise DataError("brain_tissue: no patch centre is labelled; lower threshold or image_size")
    first, last = int(nonzero[0]), int(nonzero[-1])
    kept = int(labelled.sum())
    out: list[tuple[str, int, int]] = []
    for _ in range(20):  # fixed point: the gaps' patches are not kept, so targets shrink a little
        out, z = [], first
        for i, split in enumerate(order):
            if i == len(order) - 1:
                out.append((split, z, last + 1))
                break
            cumulative = np.cumsum(labelled[z : last + 1])
            stop = z + int(np.searchsorted(cumulative, widths[i] * kept)) + 1
            out.append((split, z, stop))
            z = stop + gap
        new_kept = int(sum(labelled[z0:z1].sum() for _, z0, z1 in out if z1 > z0))
        if new_kept == kept:
            break
        kept = new_kept
    if any(z1 <= z0 or labelled[z0:z1].sum() == 0 for _, z0, z1 in out):
        raise DataError(f"brain_tissue: gap {gap} leaves an empty slab ({out}); lower gap or stride")
    return out


def build_brain_tissue(
    image_size: int = 32,
    *,
    stride: int = 8,
    slice_step: int = 4,
    group_slices: int | None = None,
    axis: str = "axial",
    slabs: tuple[float, float, float] = (0.6, 0.2, 0.2),
    order: tuple[str, ...] = ("train", "val", "test"),
    gap: int | None = None,
    threshold: float = 0.5,
    seed: int = 0,
) -> ImageSet:
    """Patches of nilearn's MNI152 T1 template (1 mm) labelled grey vs white matter.

    A patch is ``image_size`` pixels square in one slice along ``axis`` (``axial``, ``coronal`` or
    ``sagittal``), its centre voxel (row and column ``image_size // 2`` of the patch) on a grid every
    ``stride`` voxels, in every ``slice_step``-th slice. Label: ``white_matter`` (1, the positive class)
    if the centre voxel's white-matter probability exceeds ``threshold``, ``grey_matter`` (0) if its
    grey-matter probability does, otherwise the patch is skipped (CSF, background, mixed voxels).
    Intensities are the template's own (already in ``[0, 1]``), not rescaled per patch.

    Split by slab: the slices along ``axis`` are cut into consecutive slabs (from its low end:
    inferior, posterior or left), one per entry of ``order``, each holding its split's fraction of
    ``slabs`` = (train, val, test) of the labelled patches (a split named twice in ``order`` shares
    its fraction equally). ``gap`` slices (default ``image_size // 2``), centred on each cut, are left
    out, so no two splits share tissue. ``meta`` holds the slab ranges and the class balance per split.

    Groups: each split's slab is cut, from its first slice, into groups of ``group_slices`` consecutive
    slices (default ``slice_step``: every sampled slice is its own group), named
    ``{axis}_{split}_slab_{first:03d}-{last:03d}`` (slice range of the group, inclusive, clipped to the
    slab). Patches in a slice overlap (shifted by ``stride`` of ``image_size`` px: 75% by default), so
    they are not independent units; a group of whole slices is the smallest sensible unit to resample.
    Trade-off: neighbouring groups are only ``slice_step`` slices apart and still show correlated tissue
    (the same smooth anatomy), so intervals that resample groups are still somewhat optimistic; a
    larger ``group_slices`` gives fewer, less correlated groups (wider, more honest intervals, but
    resampling becomes unstable with very few groups); ``group_slices`` >= the slab thickness gives one
    group per slab. The grouping changes no image, label or split. ``seed`` is unused (the set is
    deterministic) and kept for a uniform signature.
    """
    if axis not in _AXES:
        raise DataError(f"brain_tissue: axis must be one of {list(_AXES)}; got {axis!r}")
    if len(slabs) != 3 or min(slabs) <= 0 or not math.isclose(sum(slabs), 1.0, abs_tol=1e-6):
        raise DataError(f"brain_tissue: slabs must be three positive fractions summing to 1; got {slabs}")
    if set(order) != set(SPLITS) or len(order) < 3:
        raise DataError(f"brain_tissue: order must name each of {list(SPLITS)} at least once; got {order}")
    if not 0 < threshold < 1:
        raise DataError(f"brain_tissue: threshold must be in (0, 1); got {threshold}")
    if group_slices is None:
        group_slices = slice_step
    if isinstance(group_slices, bool) or not isinstance(group_slices, (int, np.integer)) or group_slices < 1:
        raise DataError(
            f"brain_tissue: group_slices (slices per group) must be an integer >= 1; got {group_slices!r}"
        )
    group_slices = int(group_slices)
    gap = image_size // 2 if gap is None else int(gap)
    t1, gm, wm, info = _mni152()
    t1, gm, wm = (_slices_first(v, axis) for v in (t1, gm, wm))
    t1 = np.clip(t1, 0.0, 1.0)
    n_slices, rows, cols = t1.shape
    half = image_size // 2
    centres_r = grid_starts(rows, image_size, stride) + half
    centres_c = grid_starts(cols, image_size, stride) + half
    if len(centres_r) == 0 or len(centres_c) == 0:
        raise DataError(f"brain_tissue: image_size {image_size} is larger than the template's slices")
    rr, cc = np.meshgrid(centres_r, centres_c, indexing="ij")
    rr, cc = rr.ravel(), cc.ravel()

    labelled = ((gm[:, rr, cc] > threshold) | (wm[:, rr, cc] > threshold)).sum(axis=1)
    slab_list = _slabs(labelled, order, [slabs[SPLITS.index(s)] / order.count(s) for s in order], gap)

    parts: list[tuple[np.ndarray, int, str, str]] = []
    balance: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        balance[split] = dict.fromkeys(BRAIN_CLASSES, 0)
    for split, z0, z1 in slab_list:
        # (group, crops of one slice) per label, in slice order; parts are cut per (label, group) in the
        # same order, so the images come out in the same order whatever group_slices is
        by_label: dict[int, list[tuple[str, np.ndarray]]] = {0: [], 1: []}
        for z in range(z0, z1, slice_step):
            g0 = z0 + (z - z0) // group_slices * group_slices
            group = f"{axis}_{split}_slab_{g0:03d}-{min(g0 + group_slices, z1) - 1:03d}"
            is_wm = wm[z, rr, cc] > threshold
            is_gm = (gm[z, rr, cc] > threshold) & ~is_wm
            for label, mask in ((1, is_wm), (0, is_gm)):
                if mask.any():
                    crops = crops_at(t1[z], rr[mask] - half, cc[mask] - half, image_size)
                    by_label[label].append((group, crops))
        for label, pieces in by_label.items():
            for group in dict.fromkeys(g for g, _ in pieces):
                crops = np.concatenate([c for g, c in pieces if g == group])
                parts.append((crops, label, split, group))
            balance[split][BRAIN_CLASSES[label]] += int(sum(len(c) for _, c in pieces))
    meta = {
        "description": "Patches of nilearn's MNI152 T1 template (1 mm) labelled by the tissue at the "
        "centre voxel (grey vs white matter probability > threshold); split by slab of slices with "
        "a gap between slabs. A proxy target task on one population-average brain, not a diagnosis.",
        "task": "grey vs white matter (binary; positive class 1 = white_matter)",
        "positive_class": "white_matter",
        "sources": [
            {
                "name": "MNI152 T1 template + GM/WM probability templates (nilearn)",
                "package": "nilearn",
                "version": package_version("nilearn"),
                "licence": "nilearn lists the template's licence as 'unknown'; loaded from the installed "
                "package at run time, no copy is distributed",
                **info,
            }
        ],
        "slabs": [{"split": s, "first_slice": z0, "last_slice": z1 - 1} for s, z0, z1 in slab_list],
        "class_balance": balance,
        "params": {
            "image_size": image_size,
            "stride": stride,
            "slice_step": slice_step,
            "group_slices": group_slices,
            "axis": axis,
            "slabs": list(slabs),
            "order": list(order),
            "gap": gap,
            "threshold": threshold,
            "seed": seed,
        },
    }
    return assemble("brain_tissue", parts, list(BRAIN_CLASSES), meta)
