"""PSD tables: reading the PSD JSON files, the PSD scalars of every curve and how far fine-tuning moves
each model's gradient PSD (tables ``psd_scalars`` and ``psd_persistence``).

Torch-free on purpose: it runs in the light analysis environment and reads the PSD curves from the JSON
siblings that :meth:`shortcut_psd.spectral.PSDResult.save` writes next to every ``psd.npz`` (curve and
scalars: docs/DEFINITIONS.md, "Gradient PSD"). Files read (:mod:`shortcut_psd.layout`): ``psd_pretrained``
and ``psd_finetuned``; the readers take a results folder or a job's :class:`~shortcut_psd.layout.Inputs`
(:data:`Results`).

Re-exported by :mod:`shortcut_psd.aggregate`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shortcut_psd import layout, stats
from shortcut_psd.errors import DataError
from shortcut_psd.io import read_json
from shortcut_psd.layout import Inputs, Layout

Results = str | os.PathLike | Layout | Inputs  # a results folder, or a job's inputs (shortcut_psd.layout)


def read_curve(path: str | os.PathLike) -> dict[str, Any]:
    """A PSD JSON as ``{freqs, mean, lo, hi, n, scalars, group_names, group_n, group_curves,
    window_curves}`` (numpy arrays; the group and window entries None when absent); errors name the file."""
    path = Path(path).with_suffix(".json")
    try:
        d = read_json(path)
        c = d["curve"]

        def arr(v):
            return np.asarray([np.nan if x is None else x for x in v], dtype=float)

        groups = d.get("groups")
        return {
            "freqs": np.asarray(c["freqs_cpp"], dtype=float),
            "mean": arr(c["mean"]),
            "lo": arr(c["ci_lo"]),
            "hi": arr(c["ci_hi"]),
            "n": int(d["n"]),
            "scalars": {k: (np.nan if v is None else float(v)) for k, v in d["scalars"].items()},
            "group_names": groups["names"] if groups else None,
            "group_n": groups["n"] if groups else None,
            "group_curves": np.asarray(groups["curves"], dtype=float) if groups else None,
            "window_curves": {
                k: np.asarray(v, dtype=float) for k, v in (d.get("window_curves") or {}).items()
            },
            "window": d.get("options", {}).get("window"),
        }
    except FileNotFoundError as exc:
        raise DataError(f"PSD file {path} is missing; rerun the PSD step that writes it") from exc
    except (KeyError, ValueError, TypeError) as exc:
        raise DataError(f"PSD file {path} is malformed ({exc}); delete it and rerun") from exc


def _pretrained_path(files: Layout | Inputs, init: str, target: str, seed: int) -> Path:
    return files.path("psd_pretrained", init=init, target=target, seed=int(seed))


def psd_tables(
    results: Results,
    conditions: Sequence[Sequence[Any]],
    inits: Sequence[str],
    targets: Sequence[str],
    seeds: Sequence[int],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PSD scalars of every curve, and the before-vs-after distance of every fine-tuned model."""
    r = layout.locate(results)
    scal_rows, pers_rows = [], []
    pre: dict[tuple[str, str, int], dict] = {}
    for init, t, s in itertools.product(inits, targets, seeds):
        c = read_curve(_pretrained_path(r, init, t, s))
        pre[(init, t, int(s))] = c
        scal_rows.append(
            {
                "stage": "pre-trained",
                "init": init,
                "target": t,
                "artifact": "",
                "prevalence": np.nan,
                "seed": int(s),
                "n_images": c["n"],
                **c["scalars"],
            }
        )
    for init, t, a, p, s in conditions:
        c = read_curve(r.path("psd_finetuned", init=init, target=t, artifact=a, p=p, seed=s))
        ident = {"init": init, "target": t, "artifact": a, "prevalence": float(p), "seed": int(s)}
        scal_rows.append({"stage": "fine-tuned", **ident, "n_images": c["n"], **c["scalars"]})
        before = pre[(init, t, int(s))]
        dist = stats.curve_distance(before["mean"], c["mean"])
        pers_rows.append(
            {
                **ident,
                "l1": dist["l1"],
                "js": dist["js"],
                "cosine_similarity": 1.0 - dist["cosine"],
                "centroid_before": before["scalars"]["centroid_cpp"],
                "centroid_after": c["scalars"]["centroid_cpp"],
                "centroid_change": c["scalars"]["centroid_cpp"] - before["scalars"]["centroid_cpp"],
            }
        )
    return pd.DataFrame(scal_rows), pd.DataFrame(pers_rows)
