"""Data cards (JSON + Markdown) and the contact sheet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from shortcut_psd.data.card import _markdown, card_facts, contact_sheet, write_card
from shortcut_psd.data.store import ImageSet


def _toy(channels: int = 1) -> ImageSet:
    rng = np.random.default_rng(0)
    n = 30
    images = rng.random((n, channels, 8, 8)).astype(np.float32)
    labels = np.arange(n) % 3
    split = np.array(["train"] * 20 + ["val"] * 5 + ["test"] * 5)
    group = np.array([f"{s}{i // 5}" for i, s in enumerate(split)])
    meta = {
        "description": "a toy set",
        "sources": [{"name": "noise", "package": "numpy", "version": "2", "licence": "CC0"}],
        "params": {"image_size": 8, "seed": 0},
        "skipped": [{"name": "gone", "reason": "needs a download"}],
    }
    return ImageSet(images, labels, split, group, ["a", "b", "c"], name="toy", meta=meta)


def test_card_counts_stats_and_sources(tmp_path: Path) -> None:
    ds = _toy()
    facts = write_card(ds, tmp_path / "card.json", tmp_path / "card.md")
    on_disk = json.loads((tmp_path / "card.json").read_text())
    assert on_disk == json.loads(json.dumps(facts))
    assert on_disk["counts"]["train"] == {"a": 7, "b": 7, "c": 6}
    assert on_disk["totals"] == {"train": 20, "val": 5, "test": 5}
    assert on_disk["groups"] == {"train": 4, "val": 1, "test": 1}
    assert on_disk["images_per_group"] == {
        "train": {"min": 5, "median": 5.0, "max": 5},
        "val": {"min": 5, "median": 5.0, "max": 5},
        "test": {"min": 5, "median": 5.0, "max": 5},
    }
    assert on_disk["image_size"] == [8, 8] and on_disk["channels"] == 1
    stats = on_disk["pixel_stats"]["all"]
    assert np.isclose(stats["mean"], ds.images.mean(), atol=1e-6)
    assert np.isclose(stats["std"], ds.images.std(), atol=1e-6)
    assert 0 <= stats["min"] <= stats["max"] <= 1
    assert on_disk["licences"] == ["CC0"] and on_disk["packages"] == ["numpy 2"]
    assert on_disk["params"] == {"image_size": 8, "seed": 0}
    md = (tmp_path / "card.md").read_text()
    assert "# Data card: toy" in md and "| a | 7 | 2 | 1 |" in md
    assert "**noise** (numpy 2): CC0" in md and "gone: needs a download" in md
    # no temporary files left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.json", "card.md"]


def test_card_with_an_empty_split() -> None:
    ds = _toy()
    ds.split[ds.split == "test"] = "val"
    ds.group[:] = ds.split
    facts = card_facts(ds)
    assert facts["pixel_stats"]["test"]["mean"] is None
    assert facts["totals"]["test"] == 0
    assert facts["groups"]["test"] == 0
    assert facts["images_per_group"]["test"] == {"min": None, "median": None, "max": None}
    md = _markdown(facts)
    assert "| groups | 1 | 1 | 0 |" in md  # the groups were set to the split names
    assert "| images per group (min / median / max) | 20 / 20 / 20 | 10 / 10 / 10 | – |" in md


def test_card_groups_of_uneven_size(tmp_path: Path) -> None:
    ds = _toy()
    # train: groups of 2, 8 and 10 images; val and test: one group each
    ds.group[:20] = ["g0"] * 2 + ["g1"] * 8 + ["g2"] * 10
    facts = write_card(ds, tmp_path / "card.json", tmp_path / "card.md")
    assert facts["groups"] == {"train": 3, "val": 1, "test": 1}
    assert facts["images_per_group"]["train"] == {"min": 2, "median": 8.0, "max": 10}
    md = (tmp_path / "card.md").read_text()
    assert "| groups | 3 | 1 | 1 |" in md
    assert "| images per group (min / median / max) | 2 / 8 / 10 | 5 / 5 / 5 | 5 / 5 / 5 |" in md
    assert "groups per split (a group never crosses splits): train 3, val 1, test 1" in md


def test_contact_sheet_png(tmp_path: Path) -> None:
    for channels in (1, 3):
        out = tmp_path / f"sheet{channels}.png"
        contact_sheet(_toy(channels), out, per_class=4)
        with Image.open(out) as im:
            assert im.format == "PNG" and im.width > im.height > 50
    contact_sheet(_toy(), tmp_path / "all.png", per_class=2, split=None)
    assert (tmp_path / "all.png").stat().st_size > 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
