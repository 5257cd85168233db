"""Data cards: what a prepared data set holds (JSON + Markdown) and a contact sheet of examples (PNG)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from shortcut_psd.data.store import SPLITS, ImageSet
from shortcut_psd.io import save_figure, write_json, write_text


def card_facts(ds: ImageSet) -> dict[str, Any]:
    """The facts a data card shows, as a JSON-ready dict.

    Counts per split and class, groups per split (``groups``: number of distinct groups;
    ``images_per_group``: min, median and max images per group, None for an empty split; groups are the
    units that never cross splits, so they bound how many independent units an interval can resample),
    image size and channels, value range, mean and std of the pixel values (per split and overall), the
    sources with their packages and licences, and the parameters the set was built with. Statistics are
    over all pixels of all channels.
    """
    counts = ds.counts()
    per_group: dict[str, dict[str, float | None]] = {}
    for split in SPLITS:
        _, sizes = np.unique(ds.group[ds.split == split], return_counts=True)
        per_group[split] = (
            {"min": int(sizes.min()), "median": float(np.median(sizes)), "max": int(sizes.max())}
            if len(sizes)
            else {"min": None, "median": None, "max": None}
        )
    stats: dict[str, dict[str, float | None]] = {}
    for split in (*SPLITS, "all"):
        imgs = ds.images if split == "all" else ds.images[ds.split == split]
        if len(imgs):
            stats[split] = {
                "min": float(imgs.min()),
                "max": float(imgs.max()),
                "mean": float(imgs.mean(dtype=np.float64)),
                "std": float(imgs.std(dtype=np.float64)),
            }
        else:
            stats[split] = {"min": None, "max": None, "mean": None, "std": None}
    meta = dict(ds.meta)
    sources = meta.pop("sources", [])
    licences = sorted({str(s.get("licence", "unknown")) for s in sources})
    packages = sorted({f"{s['package']} {s.get('version', '')}".strip() for s in sources if s.get("package")})
    params = meta.pop("params", {})
    meta.pop("counts", None)
    return {
        "name": ds.name,
        "description": meta.pop("description", ""),
        "n_images": len(ds.images),
        "image_size": list(ds.image_size),
        "channels": ds.channels,
        "classes": list(ds.classes),
        "counts": counts,
        "totals": {s: int(sum(counts[s].values())) for s in SPLITS},
        "groups": {s: int(len(np.unique(ds.group[ds.split == s]))) for s in SPLITS},
        "images_per_group": per_group,
        "pixel_stats": stats,
        "packages": packages,
        "licences": licences,
        "sources": sources,
        "params": params,
        "extra": meta,
    }


def _min_median_max(sizes: dict[str, float | None] | None) -> str:
    if not sizes or sizes["min"] is None:
        return "–"
    return f"{sizes['min']} / {sizes['median']:g} / {sizes['max']}"


def _markdown(facts: dict[str, Any]) -> str:
    lines = [f"# Data card: {facts['name']}", ""]
    if facts["description"]:
        lines += [facts["description"], ""]
    h, w = facts["image_size"]
    lines += [
        f"- images: {facts['n_images']}, {h}×{w} px, {facts['channels']} channel(s), values in [0, 1]",
        f"- classes ({len(facts['classes'])}): {', '.join(facts['classes'])}",
        "- groups per split (a group never crosses splits): "
        + ", ".join(f"{s} {n}" for s, n in facts["groups"].items()),
        "",
        "## Images per split and class",
        "",
        "| class | " + " | ".join(SPLITS) + " |",
        "| --- | " + " | ".join("---:" for _ in SPLITS) + " |",
    ]
    for c in facts["classes"]:
        lines.append(f"| {c} | " + " | ".join(str(facts["counts"][s][c]) for s in SPLITS) + " |")
    lines.append("| **total** | " + " | ".join(f"**{facts['totals'][s]}**" for s in SPLITS) + " |")
    lines.append("| groups | " + " | ".join(str(facts["groups"][s]) for s in SPLITS) + " |")
    sizes = facts.get("images_per_group", {})
    lines.append(
        "| images per group (min / median / max) | "
        + " | ".join(_min_median_max(sizes.get(s)) for s in SPLITS)
        + " |"
    )
    lines += [
        "",
        "## Pixel values",
        "",
        "| split | min | max | mean | std |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for s, st in facts["pixel_stats"].items():
        cells = ["–" if st[k] is None else f"{st[k]:.4f}" for k in ("min", "max", "mean", "std")]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += ["", "## Sources and licences", ""]
    if facts["sources"]:
        for src in facts["sources"]:
            where = src.get("package") or src.get("path") or ""
            version = f" {src['version']}" if src.get("version") else ""
            lines.append(f"- **{src.get('name', '?')}** ({where}{version}): {src.get('licence', 'unknown')}")
    else:
        lines.append("- not recorded")
    if facts["params"]:
        lines += ["", "## Parameters", "", "| parameter | value |", "| --- | --- |"]
        lines += [f"| {k} | `{v}` |" for k, v in facts["params"].items()]
    skipped = facts["extra"].get("skipped")
    if skipped:
        lines += ["", "## Skipped sources", ""]
        lines += [f"- {s['name']}: {s['reason']}" for s in skipped]
    return "\n".join(lines) + "\n"


def write_card(ds: ImageSet, json_path: str | os.PathLike, md_path: str | os.PathLike) -> dict[str, Any]:
    """Write the data card of ``ds`` as JSON and Markdown (atomically); return the facts."""
    facts = card_facts(ds)
    write_json(json_path, facts)
    write_text(md_path, _markdown(facts))
    return facts


def contact_sheet(
    ds: ImageSet,
    png_path: str | os.PathLike,
    per_class: int = 8,
    *,
    split: str | None = "train",
    seed: int = 0,
) -> None:
    """A PNG grid, one row per class, of ``per_class`` examples drawn (seeded) from ``split``.

    Images are shown as they are stored (grey with vmin 0, vmax 1; RGB as is), never rescaled per
    image, so contrast differences between classes stay visible. ``split=None`` draws from all splits;
    a class without images there gets an empty row.
    """
    from matplotlib.figure import Figure

    rng = np.random.default_rng(seed)
    n_rows, n_cols = max(1, ds.num_classes), max(1, per_class)
    height = 0.9 * n_rows + 0.5
    fig = Figure(figsize=(0.9 * n_cols + 1.6, height))
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    fig.subplots_adjust(top=1 - 0.4 / height, bottom=0.02, wspace=0.08, hspace=0.08)
    pool = np.ones(len(ds.labels), dtype=bool) if split is None else ds.split == split
    for k, cls in enumerate(ds.classes):
        idx = np.flatnonzero(pool & (ds.labels == k))
        chosen = np.sort(rng.choice(idx, min(len(idx), n_cols), replace=False)) if len(idx) else idx
        for j, ax in enumerate(axes[k]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(chosen):
                img = ds.images[chosen[j]]
                if img.shape[0] == 1:
                    ax.imshow(img[0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
                else:
                    ax.imshow(np.moveaxis(img[:3], 0, -1).clip(0, 1), interpolation="nearest")
        axes[k, 0].set_ylabel(f"{cls}\n(n={len(idx)})", rotation=0, ha="right", va="center", fontsize=8)
    where = "all splits" if split is None else f"{split} split"
    fig.suptitle(f"{ds.name}: {per_class} examples per class ({where})", fontsize=9)
    save_figure(fig, [png_path], dpi=100)
