"""Learning order, per-model scalars: band shares, band onsets, spectral centroid and shortcut timing of one
model's snapshots, and the per-model table of a study (docs/DEFINITIONS.md, "Learning order",
bullet Per-model scalars).

Re-exported by :mod:`shortcut_psd.dynamics`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from shortcut_psd.dynamics_schedule import snapshot_steps

BANDS = ("low", "mid", "high")


def band_shares(curves: np.ndarray, freqs: np.ndarray, bands: Sequence[float]) -> np.ndarray:
    """(steps, 3): shares of each curve's (clipped at 0) total in the low, mid and high bands."""
    c = np.clip(np.asarray(curves, dtype=np.float64), 0, None)
    f = np.asarray(freqs)
    b0, b1 = float(bands[0]), float(bands[1])
    masks = [f < b0, (f >= b0) & (f < b1), f >= b1]
    tot = c.sum(axis=1, keepdims=True)
    tot[tot == 0] = np.nan
    return np.stack([c[:, m].sum(axis=1) for m in masks], axis=1) / tot


def half_change_step(steps: Sequence[int], values: Sequence[float]) -> float:
    """First step at which ``|v - v[0]| >= |v[-1] - v[0]| / 2`` (NaN when there is no change)."""
    v = np.asarray(values, dtype=np.float64)
    s = np.asarray(steps)
    total = v[-1] - v[0]
    if not np.isfinite(total) or total == 0:
        return float("nan")
    moved = (v - v[0]) * np.sign(total) >= abs(total) / 2
    return float(s[np.argmax(moved)])


def first_exceeding(steps: Sequence[int], values: Sequence[float], threshold: float) -> float:
    """First step whose value exceeds ``threshold`` (NaN when none does)."""
    v = np.asarray(values, dtype=np.float64)
    hit = np.flatnonzero(np.isfinite(v) & (v > threshold))
    return float(np.asarray(steps)[hit[0]]) if hit.size else float("nan")


def centroids(curves: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """Spectral centroid ``sum(f p) / sum(p)`` of each curve (clipped at 0), cycles per pixel."""
    c = np.clip(np.asarray(curves, dtype=np.float64), 0, None)
    return (c * np.asarray(freqs)).sum(axis=1) / c.sum(axis=1)


def load_snapshots(path: str | os.PathLike) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def model_scalars(
    snap: Mapping[str, np.ndarray], *, gap_threshold: float, auc_threshold: float
) -> dict[str, float]:
    """Band onsets, centroid at start and end, and shortcut / signal timing of one model's snapshots."""
    steps, curves, freqs = snap["steps"], snap["curves"], snap["freqs"]
    shares = band_shares(curves, freqs, snap["bands_cpp"])
    cen = centroids(curves, freqs)
    out: dict[str, float] = {f"onset_{b}": half_change_step(steps, shares[:, i]) for i, b in enumerate(BANDS)}
    out.update({f"share_change_{b}": float(shares[-1, i] - shares[0, i]) for i, b in enumerate(BANDS)})
    out["centroid_start"], out["centroid_end"] = float(cen[0]), float(cen[-1])
    out["onset_centroid"] = half_change_step(steps, cen)
    if "auc_clean" in snap and "auc_ood" in snap:
        gap = snap["auc_clean"] - snap["auc_ood"]
        out["step_gap"] = first_exceeding(steps, gap, gap_threshold)
        out["step_signal"] = first_exceeding(steps, snap["auc_clean"] - 0.5, auc_threshold)
        out["shortcut_first"] = (
            float(out["step_gap"] < out["step_signal"])
            if np.isfinite(out["step_gap"]) and np.isfinite(out["step_signal"])
            else float(np.isfinite(out["step_gap"]))
            if np.isfinite(out["step_gap"]) or np.isfinite(out["step_signal"])
            else float("nan")
        )
    return out


def requested_view(snap: Mapping[str, np.ndarray], log_steps: int | None) -> dict[str, np.ndarray]:
    """The snapshots at the steps of the schedule now requested (a file may hold more; see
    :func:`snapshot_params`). Without ``steps_per_epoch`` in the file, or ``log_steps`` None, all steps."""
    if log_steps is None or "steps_per_epoch" not in snap or not len(snap["steps"]):
        return dict(snap)
    want = set(snapshot_steps(int(snap["steps_per_epoch"]), int(snap["epochs"]), int(log_steps)))
    keep = np.asarray([int(s) in want for s in snap["steps"]])
    out = dict(snap)
    for k in ("steps", "curves", "auc_clean", "auc_iid", "auc_ood"):
        if k in out:
            out[k] = np.asarray(out[k])[keep]
    return out


ID_COLUMNS = ["phase", "init", "target", "artifact", "prevalence", "seed"]


def collect(
    entries: Sequence[Mapping[str, Any]], *, log_steps: int | None, gap_threshold: float, auc_threshold: float
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Per-model scalars (one row per entry with a recorded file) and the snapshots themselves.

    ``entries``: dicts with ``ID_COLUMNS`` and ``path``. Returns ``(per_model, snaps)``; each ``snaps``
    item is the entry plus the (requested-view) arrays.
    """
    rows, snaps = [], []
    for e in entries:
        snap = load_snapshots(e["path"])
        if not bool(snap.get("enabled", True)) or not len(snap["steps"]):
            continue
        snap = requested_view(snap, log_steps)
        sc = model_scalars(snap, gap_threshold=gap_threshold, auc_threshold=auc_threshold)
        rows.append({**{k: e[k] for k in ID_COLUMNS}, **sc})
        snaps.append({**{k: e[k] for k in ID_COLUMNS}, **snap})
    return pd.DataFrame(rows, columns=None if rows else ID_COLUMNS), snaps
